"""cbrq: an offline query engine for exported Huawei Cloud CBR backup inventories.

The import package is ``engine``; the command is ``cbrq``. Start with
:func:`engine.api.ingest` and :func:`engine.api.export_pages`.

Example::

    from engine.api import ingest
    ingest(["sample_data"], store="cbrq-store")
"""

__version__ = "0.1.0"
