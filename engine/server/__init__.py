"""cbrq serve: the HTTP emulator of the CBR API and its conformance checker."""
