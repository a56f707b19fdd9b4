"""The inventory on disk: its layout, schema, manifest, reads and writes."""
