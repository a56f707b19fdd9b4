"""Arrow schemas of the inventory tables.

Each record kind has a *typed* schema: every field of SPEC §1 with its proper
type, timestamps as UTC microsecond instants. The JSON reader is given the
same schema with timestamps as strings (:func:`read_schema`), because the
dumps mix timestamp forms that only :mod:`engine.instants` understands.

Besides the typed fields every table carries three columns of its own:

``_payload``  the record exactly as dumped (every key, known or not, at any
              depth), as JSON text with timestamps in the API's form; it is
              what export and query results give back, so nothing is lost.
``_seq``      ordinal of the file the record came from (ingest order).
``_row``      index of the record within that file.

Fields SPEC §1 lists but whose JSON type varies between dumps
(``replication_records[].extra_info``: string or object; ``version``) are not
typed; they live in ``_payload`` only.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Final

import pyarrow as pa

# The stored columns besides the typed fields, re-exported for the ingest modules.
from engine.store.layout import INTERNAL_COLUMNS as INTERNAL_COLUMNS
from engine.store.layout import PAYLOAD as PAYLOAD
from engine.store.layout import ROW as ROW
from engine.store.layout import SEQ as SEQ

if TYPE_CHECKING:
    import polars as pl

INSTANT: Final[pa.DataType] = pa.timestamp("us", tz="UTC")
_S: Final[pa.DataType] = pa.string()
_B: Final[pa.DataType] = pa.bool_()
_I: Final[pa.DataType] = pa.int64()
_F: Final[pa.DataType] = pa.float64()


APP_CONSISTENCY: Final = pa.struct(
    [
        ("app_consistency", _S),
        ("app_consistency_status", _S),
        ("app_consistency_error_code", _S),
        ("app_consistency_error_message", _S),
    ]
)

EXTEND_INFO: Final = pa.struct(
    [
        ("auto_trigger", _B),
        ("bootable", _B),
        ("contain_system_disk", _B),
        ("encrypted", _B),
        ("incremental", _B),
        ("is_multi_az", _B),
        ("os_images_data", pa.list_(pa.struct([("image_id", _S)]))),
        ("snapshot_id", _S),
        ("support_lld", _B),
        ("supported_restore_mode", _S),
        ("system_disk", _B),
        ("architecture", _S),
        ("progress", _I),
        ("app_consistency", APP_CONSISTENCY),
    ]
)

REPLICATION_RECORD: Final = pa.struct(
    [
        ("created_at", INSTANT),
        ("destination_backup_id", _S),
        ("destination_checkpoint_id", _S),
        ("destination_project_id", _S),
        ("destination_region", _S),
        ("destination_vault_id", _S),
        ("id", _S),
        ("source_backup_id", _S),
        ("source_checkpoint_id", _S),
        ("source_project_id", _S),
        ("source_region", _S),
        ("status", _S),
        ("vault_id", _S),
    ]
)

_BACKUP_FIELDS: Final[list[tuple[str, pa.DataType]]] = [
    ("id", _S),
    ("name", _S),
    ("status", _S),
    ("created_at", INSTANT),
    ("updated_at", INSTANT),
    ("protected_at", INSTANT),
    ("expired_at", INSTANT),
    ("checkpoint_id", _S),
    ("description", _S),
    ("enterprise_project_id", _S),
    ("image_type", _S),
    ("incremental", _B),
    ("parent_id", _S),
    ("project_id", _S),
    ("provider_id", _S),
    ("resource_az", _S),
    ("resource_id", _S),
    ("resource_name", _S),
    ("resource_size", _I),
    ("resource_type", _S),
    ("vault_id", _S),
    ("scheduled_operation_id", _S),
    ("extend_info", EXTEND_INFO),
    ("replication_records", pa.list_(REPLICATION_RECORD)),
]

#: Decision: children are typed one level deep (the API nests volume backups
#: under a server backup); deeper levels are kept in ``_payload`` only.
CHILD: Final = pa.struct(_BACKUP_FIELDS)

BACKUP_FIELDS: Final = pa.schema([*_BACKUP_FIELDS, ("children", pa.list_(CHILD))])

VAULT_FIELDS: Final = pa.schema(
    [
        ("id", _S),
        ("name", _S),
        ("project_id", _S),
        ("provider_id", _S),
        ("resource_type", _S),
        ("enterprise_project_id", _S),
        ("created_at", INSTANT),
        ("threshold", _I),
        (
            "billing",
            pa.struct(
                [
                    ("size", _F),
                    ("used", _F),
                    ("allocated", _F),
                    ("status", _S),
                    ("object_type", _S),
                    ("protect_type", _S),
                    ("charging_mode", _S),
                ]
            ),
        ),
    ]
)

MEMBER_FIELDS: Final = pa.schema(
    [
        ("id", _S),
        ("backup_id", _S),
        ("dest_project_id", _S),
        ("status", _S),
        ("vault_id", _S),
        ("image_id", _S),
        ("created_at", INSTANT),
        ("updated_at", INSTANT),
    ]
)

FIELDS: Final[dict[str, pa.Schema]] = {
    "backups": BACKUP_FIELDS,
    "vaults": VAULT_FIELDS,
    "members": MEMBER_FIELDS,
}

#: Fields a record of each kind must have, as a non-empty string.
REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "backups": ("id",),
    "vaults": ("id",),
    "members": ("backup_id", "dest_project_id"),
}


def stored_schema(kind: str) -> pa.Schema:
    """The schema of an inventory table: typed fields plus the internal columns.

    Example: ``stored_schema("backups").field("created_at").type`` is ``INSTANT``.
    """
    return (
        FIELDS[kind]
        .append(pa.field(PAYLOAD, pa.large_string()))
        .append(pa.field(SEQ, pa.int64()))
        .append(pa.field(ROW, pa.int64()))
    )


def _as_read_type(dtype: pa.DataType) -> pa.DataType:
    if dtype == INSTANT:
        return _S
    if pa.types.is_struct(dtype):
        return pa.struct([f.with_type(_as_read_type(f.type)) for f in dtype.fields])
    if pa.types.is_list(dtype):
        return pa.list_(_as_read_type(dtype.value_type))
    return dtype


def read_schema(kind: str) -> pa.Schema:
    """The schema given to the JSON reader: typed fields, timestamps as strings.

    Example: ``read_schema("members").field("created_at").type == pa.string()``.
    """
    return pa.schema([f.with_type(_as_read_type(f.type)) for f in FIELDS[kind]])


def instant_paths(
    dtype: pa.DataType | pa.Schema, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    """Paths to every timestamp field; a list level is written ``"[]"``.

    Example: ``("replication_records", "[]", "created_at")`` is one of the backups'.
    """
    fields = list(dtype) if isinstance(dtype, pa.Schema) else []
    if isinstance(dtype, pa.StructType):
        fields = list(dtype.fields)
    if isinstance(dtype, pa.ListType):
        return instant_paths(dtype.value_type, (*prefix, "[]"))
    paths: list[tuple[str, ...]] = []
    for field in fields:
        if field.type == INSTANT:
            paths.append((*prefix, field.name))
        else:
            paths.extend(instant_paths(field.type, (*prefix, field.name)))
    return paths


def known_keys() -> frozenset[str]:
    """Every key name any typed schema knows, at any depth.

    Used to report unknown keys; ``extra_info`` and ``version`` are known
    though untyped.

    Example: ``"extend_info" in known_keys()``.
    """
    names: set[str] = {"extra_info", "version", "count", "billing"}

    def walk(dtype: pa.DataType) -> None:
        if isinstance(dtype, pa.StructType):
            for f in dtype.fields:
                names.add(f.name)
                walk(f.type)
        elif isinstance(dtype, pa.ListType):
            walk(dtype.value_type)

    for schema in FIELDS.values():
        walk(pa.struct(list(schema)))
    return frozenset(names)


@functools.cache
def empty_frame(kind: str) -> pl.DataFrame:
    """An empty polars frame in the stored schema of ``kind``.

    Example: ``empty_frame("vaults").columns[-3:] == ["_payload", "_seq", "_row"]``.
    """
    import polars as pl

    frame = pl.from_arrow(stored_schema(kind).empty_table())
    assert isinstance(frame, pl.DataFrame)
    return frame
