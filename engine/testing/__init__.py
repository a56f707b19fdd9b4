"""Tools for testing ListBackups implementations against SPEC.md.

:mod:`engine.testing.reference` is a deliberately naive model of the API in
plain Python (lists of dicts, ``sorted``, slicing; no polars, no pyarrow).

Example::

    from engine.testing.reference import answer
    answer(backups, vaults, members, "status=error&limit=2", project="p1")
"""
