"""The ListBackups contract as data.

Everything the engine decides about the API lives here as plain constants, so
that the ingester, the query compiler, the server and the reference model read
one and the same set of facts (``../shared/SPEC.md`` is the prose version).
Decisions SPEC.md leaves open are written down here, each with its reason.
"""

from __future__ import annotations

from typing import Final

# --- dump kinds (SPEC §1) ---------------------------------------------------

#: Top-level key of a response -> (record kind, is the value a list?).
RESPONSE_KEYS: Final[dict[str, tuple[str, bool]]] = {
    "backups": ("backups", True),
    "backup": ("backups", False),
    "vaults": ("vaults", True),
    "vault": ("vaults", False),
    "members": ("members", True),
    "member": ("members", False),
}

#: Record kinds the inventory keeps, in the order they are reported.
RECORD_KINDS: Final[tuple[str, ...]] = ("backups", "vaults", "members")

#: Keys whose string values are instants, at any depth of a record.
#: Decision: the canonical rewrite of SPEC §1 ("emit in the API's form")
#: applies to every value of these keys that parses as a timestamp, also
#: inside unknown nested objects; a value that does not parse is left as it
#: is there (and is an error where the schema types the field).
TIMESTAMP_KEYS: Final[tuple[str, ...]] = ("created_at", "updated_at", "expired_at", "protected_at")

#: The API's own timestamp form, which the official SDK's parser accepts.
CANONICAL_TIMESTAMP_FORMAT: Final[str] = "%Y-%m-%dT%H:%M:%S%.6f"

# --- enumerations (SPEC §2) -------------------------------------------------

STATUSES: Final[tuple[str, ...]] = (
    "available",
    "protecting",
    "deleting",
    "restoring",
    "error",
    "waiting_protect",
    "waiting_delete",
    "waiting_restore",
)
RESOURCE_TYPES: Final[tuple[str, ...]] = (
    "OS::Nova::Server",
    "OS::Cinder::Volume",
    "OS::Ironic::BareMetalServer",
    "OS::Native::Server",
    "OS::Sfs::Turbo",
    "OS::Workspace::DesktopV2",
)
IMAGE_TYPES: Final[tuple[str, ...]] = ("backup", "replication")
REPLICATION_STATUSES: Final[tuple[str, ...]] = (
    "replicating",
    "success",
    "fail",
    "skip",
    "waiting_replicate",
)
MEMBER_STATUSES: Final[tuple[str, ...]] = ("pending", "accepted", "rejected")
SORT_KEYS: Final[tuple[str, ...]] = (
    "created_at",
    "updated_at",
    "name",
    "status",
    "protected_at",
    "id",
)
DEFAULT_ENTERPRISE_PROJECT: Final[str] = "0"

# --- dedup (SPEC §2, last paragraph) ----------------------------------------

#: Decision: a backup copy without ``updated_at`` is older than any copy with
#: one; among equals the copy ingested last (later file, later record) wins.
#: Vaults are keyed by ``id``, members by (backup_id, dest_project_id), and
#: for both the copy ingested last wins.
DEDUP_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "backups": ("id",),
    "vaults": ("id",),
    "members": ("backup_id", "dest_project_id"),
}

# --- query parameters (SPEC §2) ---------------------------------------------

OWN_TYPES: Final[tuple[str, ...]] = ("private", "shared", "all_granted")
DEFAULT_OWN_TYPE: Final[str] = "private"
#: Old spellings of member_status from the predecessor API, accepted as aliases.
MEMBER_STATUS_ALIASES: Final[dict[str, str]] = {"accept": "accepted", "reject": "rejected"}
ALL_GRANTED_EPS: Final[str] = "all_granted_eps"
SORT_MAX_LENGTH: Final[int] = 255
SORT_DIRECTIONS: Final[tuple[str, ...]] = ("asc", "desc")
DEFAULT_SORT_DIRECTION: Final[str] = "desc"
DEFAULT_SORT: Final[tuple[tuple[str, str], ...]] = (("created_at", "desc"),)
#: ``id`` ascending always ends the sort keys, so every order is total.
TIE_BREAKER: Final[tuple[str, str]] = ("id", "asc")
LIMIT_RANGE: Final[tuple[int, int]] = (1, 1000)
#: What the API (and ``cbrq serve``) uses when no limit is given; the CLI and
#: the Python API return every match instead.
API_DEFAULT_LIMIT: Final[int] = 1000
USED_PERCENT_RANGE: Final[tuple[int, int]] = (1, 100)
#: Decision: SPEC §2 bounds ``offset`` only below; above, the largest signed
#: 64-bit integer (what a server's integer type holds). Larger is a 400, not
#: an overflow.
OFFSET_RANGE: Final[tuple[int, int]] = (0, 2**63 - 1)
BOOLEANS: Final[dict[str, bool]] = {"true": True, "false": False}

#: Decision: an empty value (``name=``) is an error for every parameter; the
#: SDK never sends one, and a silent "no filter" would hide a script's bug.
#: Decision: a parameter other than ``status`` given twice is an error.
#: Decision: ``incremental`` reads the top-level field and falls back to
#: ``extend_info.incremental``; a backup with neither never matches.
#: Decision: the ``limit`` of a CLI/Python response with no limit is ``null``.
#: Decision: ``member_status`` does not change ``own_type``'s default
#: (private, as SPEC §2 says); members name the project as a *destination*,
#: so combine it with ``own_type=shared`` or ``all_granted``.
#: Decision: a backup without ``project_id`` is owned by no project: never
#: private, and foreign for ``own_type=shared``.
