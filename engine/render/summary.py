"""Phase: an ingest's summary as the lines a person reads (``cbrq ingest`` on stderr).

The counts say what happened to each backup read: new, changed (another text took
over its id), unchanged (the same text again) or duplicate (a copy that lost to
another); they add up to the backups read. Unknown keys are named where they sit:
a key nested under an unknown one is listed in parentheses after it, one nested
in a known object by its dotted path. On a terminal, numbers get thousands
separators; written to a file or a pipe they stay plain, for scripts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from engine.ingest.pipeline import IngestSummary

#: Unknown keys named in full before the list is cut.
SHOWN_KEYS: Final[int] = 10


def number(value: int, terminal: bool) -> str:
    """``value`` with thousands separators on a terminal, plain elsewhere.

    Example: ``number(1234567, True)`` -> ``'1,234,567'`` (``'1234567'`` off a terminal).
    """
    return f"{value:,}" if terminal else str(value)


def unknown_keys_text(paths: Iterable[tuple[str, ...]]) -> str:
    """The unknown keys at ``paths``, each under its parent (at most :data:`SHOWN_KEYS`).

    ``paths`` holds each unknown key's path from the record and the paths of
    every key under it (:attr:`IngestSummary.unknown_paths`).

    Example: ``unknown_keys_text([("fail_code",), ("fail_code", "Code")])`` ->
    ``'fail_code (Code)'``.
    """
    chosen = set(paths)
    tops = sorted(p for p in chosen if not any(p[:n] in chosen for n in range(1, len(p))))
    shown = [_under(top, ".".join(top), chosen) for top in tops[:SHOWN_KEYS]]
    more = f", ... ({len(tops)} in all)" if len(tops) > SHOWN_KEYS else ""
    return ", ".join(shown) + more


def _under(path: tuple[str, ...], label: str, chosen: set[tuple[str, ...]]) -> str:
    """``label`` and, in parentheses, the keys directly under ``path`` (each with its own)."""
    children = sorted(p for p in chosen if len(p) == len(path) + 1 and p[: len(path)] == path)
    if not children:
        return label
    return f"{label} ({', '.join(_under(c, c[-1], chosen) for c in children)})"


def ingest_lines(summary: IngestSummary, terminal: bool) -> list[str]:
    """The lines of files, backups, vaults, members, the inventory and unknown keys.

    Example: ``ingest_lines(ingest(["sample_data"], store="inv"), False)[1]`` ->
    ``'backups: 160 new, 0 changed, 0 unchanged, 8 duplicate (168 read)'``.
    """

    def n(value: int) -> str:
        return number(value, terminal)

    read = summary.records
    lines = [
        f"files: {n(summary.files)} ingested, {n(len(summary.skipped))} skipped (already ingested)",
        f"backups: {n(summary.backups_new)} new, {n(summary.backups_changed)} changed, "
        f"{n(summary.backups_unchanged)} unchanged, {n(summary.backups_duplicate)} duplicate "
        f"({n(read['backups'])} read)",
        f"vaults: {n(read['vaults'])} read; members: {n(read['members'])} read",
        "inventory: " + ", ".join(f"{n(count)} {k}" for k, count in summary.totals.items()),
    ]
    if summary.unknown_paths or summary.unknown_keys:
        paths = summary.unknown_paths or {(key,) for key in summary.unknown_keys}
        lines.append(f"unknown keys kept: {unknown_keys_text(paths)}")
    return lines
