"""The ListBackups contract as data.

Everything the engine decides about the API lives here as plain constants, so
that the ingester, the query compiler, the server and the reference model read
one and the same set of facts (``docs/semantics.md`` is the prose version,
for users). Decisions the public API documents leave open are written down
here, each with its reason.

Example::

    >>> RESPONSE_KEYS["backup"]  # a ShowBackup body holds one backup
    ('backups', False)
    >>> TIE_BREAKER, LIMIT_RANGE
    (('id', 'asc'), (1, 1000))
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

#: File names a directory walk reads as dumps (each may end in ``.gz`` too).
DUMP_SUFFIXES: Final[tuple[str, ...]] = (".json", ".ndjson", ".jsonl")

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

# --- analyses (SPEC §5) -----------------------------------------------------

#: Keys ``stats`` may group by: record fields, then ``created_at`` truncated
#: (UTC) to a day, an ISO week (starting Monday) or a month.
STATS_FIELDS: Final[tuple[str, ...]] = (
    "status",
    "resource_type",
    "image_type",
    "vault_id",
    "project_id",
    "enterprise_project_id",
    "resource_az",
)
STATS_PERIODS: Final[dict[str, str]] = {"day": "1d", "week": "1w", "month": "1mo"}
STATS_KEYS: Final[tuple[str, ...]] = (*STATS_FIELDS, *STATS_PERIODS)
#: Decision: ``stats`` needs at least one group key (no "one total row" case);
#: a key given twice is an error. Group keys sort ascending with nulls last.
DEFAULT_STATS_BY: Final[tuple[str, ...]] = ("status",)
#: Durations are a whole number and a unit (``90m``, ``24h``, ``7d``, ``2w``).
DURATION_UNITS: Final[dict[str, str]] = {
    "m": "minutes",
    "h": "hours",
    "d": "days",
    "w": "weeks",
}
DEFAULT_MAX_AGE: Final[str] = "24h"
#: Decision: durations, --min-days and --stuck-hours are at most 100 years (36,500
#: days): longer ones name no real policy and overflow instant arithmetic.
LONGEST_SPAN_DAYS: Final[int] = 36_500
DEFAULT_MIN_DAYS: Final[int] = 35
DEFAULT_STUCK_HOURS: Final[int] = 24
#: A vault without its own ``threshold`` is full at this usage (percent).
#: Decision: ``full`` compares exactly, as ``used_percent=`` does (SPEC §2:
#: ``used * 100 >= threshold * size * 1024``), not the rounded ``used_percent``.
DEFAULT_THRESHOLD: Final[int] = 80
#: Statuses a backup should only pass through: past ``--stuck-hours`` it is stuck.
STUCK_STATUSES: Final[tuple[str, ...]] = (
    "protecting",
    "deleting",
    "restoring",
    "waiting_protect",
    "waiting_delete",
    "waiting_restore",
)
#: rpo verdicts and retention/hygiene findings, in the order rows are listed.
RPO_VERDICTS: Final[tuple[str, ...]] = ("never", "breach", "ok")
#: The verdicts ``--only`` keeps rows by (issue 20): retention's and hygiene's findings,
#: capacity's ``full`` (``full`` true) or ``ok`` (false), diff's changes.
RETENTION_FINDINGS: Final[tuple[str, ...]] = ("overdue", "short")
HYGIENE_FINDINGS: Final[tuple[str, ...]] = ("error", "orphan", "stuck")
CAPACITY_VERDICTS: Final[tuple[str, ...]] = ("full", "ok")
#: What ``--fail-on VERDICT`` exits 3 on, per analysis. Decision: ``--fail-on breach``
#: also fails on ``never`` (no good backup at all is worse than an old one: the cron
#: mail must not stay silent when every backup failed); ``--fail-on never`` only on it.
#: It judges every row of the analysis, before ``--only`` and ``--fields`` keep some.
FAIL_ON_VERDICTS: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "rpo": {"breach": ("never", "breach"), "never": ("never",)},
    "retention": {"short": ("short",)},
    "capacity": {"full": ("full",)},
}
DIFF_KINDS: Final[tuple[str, ...]] = ("backup", "vault")
DIFF_CHANGES: Final[tuple[str, ...]] = ("added", "removed", "changed")
#: Per analysis command, the verdicts of its rows (stats has none).
ANALYSIS_VERDICTS: Final[dict[str, tuple[str, ...]]] = {
    "rpo": RPO_VERDICTS,
    "retention": RETENTION_FINDINGS,
    "hygiene": HYGIENE_FINDINGS,
    "capacity": CAPACITY_VERDICTS,
    "diff": DIFF_CHANGES,
}
#: Paging and sort have no meaning for an analysis: in its filter they are errors.
ANALYSIS_FORBIDDEN: Final[tuple[str, ...]] = ("marker", "offset", "limit", "sort")

#: Decision: the default ``at`` is the newest ``updated_at`` over ALL live
#: (top-level, deduplicated) backups of the inventory, not only the filtered
#: ones; ``null`` when there is none. With a null ``at`` no age-based finding
#: is made: rpo takes ``last_good`` with no ``<= at`` bound, ``age_seconds``
#: is null and the verdict is ``ok`` when a good backup exists (else
#: ``never``); retention makes no ``overdue`` and hygiene no ``stuck`` rows.
#: ``diff`` uses B's default ``at``. ``now`` is read once, to the microsecond.
#: Decision: children are never analysed; a filter narrows the backups, and
#: the vaults only through a ``vault_id`` in it (capacity lists only that
#: vault, rpo takes listed resources only from it). rpo also drops a listed
#: resource when the filter has ``resource_type`` (or ``resource_id``) and
#: the item's ``type`` (``id``) differs.
#: Decision (rpo): a resource id is a non-null ``resource_id`` or
#: ``resources[].id``. ``resource_name``/``resource_type`` come from the
#: resource's newest filtered backup (``created_at``, a null one oldest; ties
#: to the larger ``id``), else from the listing vault's item (``name``,
#: ``type``; the smallest vault id), else null. ``backups`` counts filtered
#: backups of the resource, any status. Rows: never, breach, ok; then
#: ``age_seconds`` descending; then resource id.
#: Decision (retention, hygiene): one row per (backup, finding), ordered by
#: ``id`` then ``finding`` (alphabetical). ``short`` needs ``created_at`` and
#: ``expired_at``; ``overdue`` needs ``expired_at``; ``stuck`` needs
#: ``updated_at``. ``orphan`` applies only when some vault (of the whole
#: inventory) lists a resource; a null ``resource_id`` is then an orphan.
#: Decision (capacity): ``resources`` is the length of the vault's
#: ``resources`` list (0 when absent); ``full`` is false when
#: ``used_percent`` is null; ``backups`` counts filtered live backups.
#: Decision (vault ``resources``, issue 20): a value that is not a JSON list (a
#: string, a number, an object, null) lists no resources (capacity counts 0);
#: in a list every element counts for capacity, and names a resource only when
#: it is an object whose ``id`` is a string (its ``name``/``type`` are read when
#: strings, else null). Same for rpo, hygiene, the report and diff's vault side.
#: Decision (numbers, issue 20): stats sums ``resource_size`` in 128 bits;
#: ``size_gb`` is Int64 unless a sum does not fit, then Int128 (exact in every
#: format, never wrapped negative). capacity computes ``used_percent`` as
#: ``used / size / 1024 * 100`` (the same bits as ``used / (size * 1024) * 100``,
#: but ``size * 1024`` cannot overflow), and ``full`` exactly while both sides of
#: ``used * 100 >= threshold * size * 1024`` are finite, else on the quotient
#: ``used / size``; a percentage past the float range is +inf in the frame (the
#: fullest; ``inf`` in a table and csv) and null in json and ndjson, which have no
#: infinity (no analysis writes the invalid token ``Infinity``).
#: Decision (diff): an absent key equals a JSON null (at any depth); values of
#: :data:`TIMESTAMP_KEYS` compare as instants; other values as parsed JSON
#: (``1 == 1.0``; ``true`` is not ``1``; key order does not matter).
#: ``used_mb_delta`` is B - A of ``billing.used`` for a changed vault, null
#: for added and removed ones (and when either side has none).

# --- the inventory over time: trend and forecast (SPEC §6) ------------------

#: The columns of ``cbrq trend``, in SPEC §6's order.
TREND_COLUMNS: Final[tuple[str, ...]] = (
    "at",
    "backups",
    "size_gb",
    "available",
    "error",
    "added",
    "gone",
    "breaches",
    "used_mb",
)
DEFAULT_TREND_EVERY: Final[str] = "day"
#: Decision (trend periods): periods are those of ``stats`` (UTC day, ISO week from
#: Monday, month); a period ends at its last microsecond (a day at 23:59:59.999999),
#: as "at or before T" counts an export taken at midnight for the day it starts.
#: Rows run from the period of the first snapshot (``max(first snapshot, --since)``)
#: to that of the last (``min(last snapshot, --until)``); the last row's ``at`` is
#: that end, not its period's end. ``--since`` after ``--until`` is an error; a
#: range holding no instant gives no rows. A store without a snapshot is an error.
#: Decision (trend counts): ``backups``, ``size_gb`` (``resource_size`` summed,
#: nulls as 0), ``available`` and ``error`` count the backups present at ``at``
#: whose version then matches the filter. ``added``: those counted at this row
#: and not at the previous period's end (for the first row: the end of the period
#: before it); ``gone`` the reverse; so ``backups`` = previous + added - gone.
#: ``breaches``: rpo's ``never`` and ``breach`` rows at ``at`` over those backups
#: and the resources the vaults present at ``at`` list (SPEC §5's rules, the
#: filter narrowing them as it narrows rpo). ``used_mb``: ``billing.used``
#: summed over the vaults present at ``at`` (a ``vault_id`` in the filter keeps
#: that vault only, as capacity does); null when no vault is present.
#: Decision (capacity --forecast): the points of a vault are its versions taken in
#: ``[at - FORECAST_DAYS days, at]``, one per distinct ``taken_at`` (the version of
#: the later ingest at a shared instant), x in days, y ``billing.used`` (MB; a
#: version without one is no point). With fewer than :data:`FORECAST_POINTS`
#: points, or a least-squares slope <= 0, ``days_to_full`` is null; a vault
#: ``full`` at ``at`` gives 0; else the days from ``at`` until the line reaches
#: ``threshold`` % of ``billing.size`` (GB x 1024 MB), at least 0 (a line already
#: past the mark of a vault not yet full gives 0); null for a vault of size 0. With
#: no ``at`` (no backup with an ``updated_at``) there is no line: a full vault still
#: gives 0, every other vault null.
FORECAST_DAYS: Final[int] = 30
FORECAST_POINTS: Final[int] = 3

# --- the HTML report (cbrq report) -----------------------------------------

#: Decision: the report's replication coverage is the share of the filtered
#: ``available`` backups that have at least one ``replication_records`` entry
#: in this status (a copy that exists); ``replicating``, ``waiting_replicate``,
#: ``fail`` and ``skip`` do not count, and a backup with no records is not covered.
REPLICATED_STATUS: Final[str] = "success"
#: Decision (output): every analysis output states ``at`` under this key: the
#: json object ``{"at", "rows"}``; in ndjson, the first key of every line (each
#: line stands alone: grep, split and cat keep it), and with no rows a single
#: line ``{"at": ...}`` with no other key (no row has only that key); a table's footer line.
#: csv, tsv and parquet hold the rows only (their columns are the rows').
ANALYSIS_AT_KEY: Final[str] = "at"

#: Every output format, in the order help texts list them. The writers are
#: :data:`engine.render.WRITERS` (checked against this list when imported);
#: the list lives here so that ``--help`` needs no polars.
OUTPUT_FORMATS: Final[tuple[str, ...]] = ("table", "json", "ndjson", "csv", "tsv", "parquet")
