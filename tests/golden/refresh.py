"""Fill ``?`` expectations in cases.tsv from the reference model (review the diff!).

Usage: ``python tests/golden/refresh.py [--all]`` (``--all`` recomputes every row).
``--daily`` writes instead the missing golden outputs of ``tests/golden/daily/cases.tsv``
from the CLI (``--daily --all``: every one); check each against SPEC §6 by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from tests.golden import daily  # noqa: E402
from tests.golden.cases import CASES_FILE, expected_by_reference, load_store  # noqa: E402


def refresh_daily(everything: bool) -> None:
    """Write the golden outputs of the daily cases that are missing (or all of them)."""
    for case in daily.cases():
        if everything or not case.path.exists():
            case.path.write_text(daily.output(case))
            print(f"wrote {case.path.relative_to(HERE.parent.parent)}")


def main() -> None:
    """Rewrite cases.tsv with the reference model's answers."""
    everything = "--all" in sys.argv
    if "--daily" in sys.argv:
        refresh_daily(everything)
        return
    data = load_store()
    out = []
    for line in CASES_FILE.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            out.append(line)
            continue
        project, options, query, expect = line.split("\t")
        if everything or expect == "?":
            expect = expected_by_reference(data, project, options, query)
        out.append("\t".join([project, options, query, expect]))
    CASES_FILE.write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
