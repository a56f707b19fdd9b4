"""Dump files in, typed frames out: sources, forms, normalization."""
