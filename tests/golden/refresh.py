"""Fill ``?`` expectations in cases.tsv from the reference model (review the diff!).

Usage: ``python tests/golden/refresh.py [--all]`` (``--all`` recomputes every row).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from tests.golden.cases import CASES_FILE, expected_by_reference, load_store  # noqa: E402


def main() -> None:
    """Rewrite cases.tsv with the reference model's answers."""
    everything = "--all" in sys.argv
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
