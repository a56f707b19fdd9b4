"""`cbrq report`: one self-contained, deterministic HTML page, as a user runs and opens it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.report import SECTIONS, sections
from tests.conftest import REPO, SAMPLE
from tests.golden.cases import load_store

AT = "2026-11-01T00:00:00Z"
CHARTS = (
    "backups_per_day",
    "error_rate_per_week",
    "size_by_resource_type",
    "rpo_age",
    "replication_coverage",
    "retention_days",
    "vault_fill",
    "hygiene_findings",
)
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
#: Chromium without these waits on the network (closed here) and on first-run work.
BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stderr


@pytest.fixture(scope="module")
def store() -> str:
    return str(load_store())


@pytest.fixture(scope="module")
def built(store: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of sample_data at a fixed instant, with its charts as PNGs."""
    folder = tmp_path_factory.mktemp("report")
    code, err = run(
        "report", "--store", store, "--at", AT, "-o", str(folder / "report.html"),
        "--png", str(folder / "png"),
    )  # fmt: skip
    assert code == 0, err
    assert "report.html" in err
    return folder


def test_the_file_names_no_network_address(built: Path) -> None:
    text = (built / "report.html").read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", text, re.I)
    assert "@import" not in text and "xlink" not in text
    # The only references are to ids inside the file itself.
    assert set(re.findall(r"url\((.)", text)) <= {"#"}
    assert set(re.findall(r'href="(.)', text)) <= {"#"}


def test_every_section_has_its_chart_and_table(built: Path) -> None:
    text = (built / "report.html").read_text(encoding="utf-8")
    assert list(sections(text)) == [anchor for anchor, _ in SECTIONS]
    for name in CHARTS:
        figure = text.split(f'<figure id="chart-{name}">', 1)[1].split("</figure>", 1)[0]
        assert "<svg" in figure and "<figcaption>" in figure
    for anchor, _ in SECTIONS[1:]:
        part = text.split(f'<section id="{anchor}">', 1)[1].split("</section>", 1)[0]
        assert "<table>" in part or "No rows." in part, anchor
    assert f"{AT[:10]} 00:00:00 UTC" in text  # the at used is stated


def test_summary_counts_and_capped_tables(built: Path) -> None:
    text = (built / "report.html").read_text(encoding="utf-8")
    summary = text.split('<section id="summary">', 1)[1].split("</section>", 1)[0]
    assert re.search(r'backups</div><div class="value">302</div>', summary)
    assert "2020-02-21 07:00:34" in summary  # the oldest backup of sample_data
    retention = text.split('<section id="retention">', 1)[1].split("</section>", 1)[0]
    assert retention.count("<tr>") == 1 + 25  # header and the first 25 rows
    assert re.search(r"[\d,]+ more rows not shown", retention)


def test_same_inventory_and_at_give_the_same_bytes(built: Path, store: str, tmp_path: Path) -> None:
    # Another process with another hash seed: no set or dict order may leak into the file.
    again = tmp_path / "again.html"
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)}
    command = ["report", "--store", store, "--at", AT, "-o", str(again)]
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", *command],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert again.read_bytes() == (built / "report.html").read_bytes()
    later = tmp_path / "later.html"
    assert run("report", "--store", store, "--at", "2026-12-01T00:00:00Z", "-o", str(later))[0] == 0
    assert later.read_bytes() != again.read_bytes()


def test_a_filter_narrows_the_report(store: str, tmp_path: Path) -> None:
    out = tmp_path / "errors.html"
    assert run("report", "status=error", "--store", store, "--at", AT, "-o", str(out))[0] == 0
    summary = out.read_text().split('<section id="summary">', 1)[1].split("</section>", 1)[0]
    assert re.search(r'backups</div><div class="value">22</div>', summary)


def test_a_filter_matching_nothing_still_writes_every_section(store: str, tmp_path: Path) -> None:
    out = tmp_path / "none.html"
    assert run("report", "name=no-such-backup", "--store", store, "-o", str(out))[0] == 0
    text = out.read_text()
    assert list(sections(text)) == [anchor for anchor, _ in SECTIONS]
    assert "No rows." in text
    # No empty axes: a chart with nothing to draw is a sentence saying so in its place.
    undrawn = re.findall(r'<p class="nochart" id="chart-(\w+)">', text)
    assert undrawn == [name for name in CHARTS if name != "vault_fill"]  # the vaults still are
    assert text.count("<svg") == 1 and '<figure id="chart-vault_fill">' in text
    assert "No replication records: none of the 0 available backup(s)" in text


def test_bad_options_are_usage_errors(store: str, tmp_path: Path) -> None:
    out = tmp_path / "never.html"
    code, err = run("report", "limit=3", "--store", store, "-o", str(out))
    assert code == 2 and "limit" in err and err.startswith("cbrq: error:")
    code, err = run("report", "--store", store, "--max-age", "3 weeks", "-o", str(out))
    assert code == 2 and "--max-age" in err
    assert not out.exists()


def test_png_writes_every_chart(built: Path) -> None:
    from PIL import Image

    written = sorted(p.name for p in (built / "png").iterdir())
    assert written == sorted(f"{name}.png" for name in CHARTS)
    for name in written:
        with Image.open(built / "png" / name) as image:
            assert image.format == "PNG" and image.width >= 800


def test_without_matplotlib_the_extra_is_named(tmp_path: Path) -> None:
    fake = tmp_path / "fake" / "matplotlib"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake.parent), str(REPO)])}
    out = tmp_path / "never.html"
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "report", "--from", str(SAMPLE), "-o", str(out)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "pip install 'cbrq[report]'" in done.stderr
    assert "Traceback" not in done.stderr and not out.exists()


def _browser() -> str | None:
    """A headless-capable Chromium on PATH (``.ci/run`` installs Debian's on CI).

    The suite never installs one itself: a test run must not change the machine.
    """
    for name in BROWSERS:
        if found := shutil.which(name):
            return found
    return None


def test_chromium_renders_the_report(built: Path, tmp_path: Path) -> None:
    browser = _browser()
    if browser is None:
        pytest.skip(
            "no chromium, chromium-browser or google-chrome on PATH (.ci/run installs "
            "Debian's chromium on CI; `apt-get install chromium` does it by hand)"
        )
    from PIL import Image

    shot = tmp_path / "shot.png"
    page = (built / "report.html").resolve().as_uri()
    done = subprocess.run(
        [browser, *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={shot}", "--window-size=1200,3000", page],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert shot.exists(), done.stderr[-2000:]
    with Image.open(shot) as image:
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20) or []
    assert rgb.size == (1200, 3000)
    # A blank or unstyled page has a handful of colours; charts and cards bring hundreds.
    assert len(colours) > 200
    assert max(count for count, _ in colours) < 0.9 * rgb.width * rgb.height


#: The RPO table's column headers as the page prints them (verdict and age first).
RPO_HEADERS = (
    "verdict", "age", "resource_name", "resource_type", "last_good", "backups", "vault_id",
    "resource_id",
)  # fmt: skip


def _header_rows(pdf: Path, headers: tuple[str, ...]) -> list[list[tuple[str, float, float]]]:
    """Each printed row of ``headers`` in ``pdf``: the header texts found at one height of one
    page, with their x and the page's width, left to right.

    Chromium leaves out of the PDF the text it clips (a table cut at the page's edge), so
    a header that is not on the page is not in the row.
    """
    from pypdf import PdfReader

    rows: dict[tuple[int, int], list[tuple[str, float, float]]] = {}
    for number, sheet in enumerate(PdfReader(pdf).pages):
        width = float(sheet.mediabox.width)
        for text, x, y in _texts(sheet):
            if text in headers:
                rows.setdefault((number, round(y)), []).append((text, x, width))
    return [sorted(row, key=lambda hit: hit[1]) for row in rows.values()]


def _texts(sheet: Any) -> list[tuple[str, float, float]]:
    """The text runs of one PDF page with their position (x, y in points)."""
    found: list[tuple[str, float, float]] = []

    def seen(text: str, cm: list[float], tm: list[float], *_: object) -> None:
        x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        found.append((text.strip(), x, y))

    sheet.extract_text(visitor_text=seen)
    return found


def test_printed_the_rpo_table_keeps_every_column_on_the_page(built: Path, tmp_path: Path) -> None:
    """Printed to PDF (A4), the RPO table's header row holds every column, verdict and age
    included, inside the page: the report is one to forward (issue 23)."""
    browser = _browser()
    if browser is None:
        pytest.skip("no chromium, chromium-browser or google-chrome on PATH (see above)")
    pdf = tmp_path / "report.pdf"
    page = (built / "report.html").resolve().as_uri()
    done = subprocess.run(
        [browser, *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         "--no-pdf-header-footer", f"--print-to-pdf={pdf}", page],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert pdf.exists(), done.stderr[-2000:]
    # The header rows of the RPO table (one per page it spans): where resource_id and
    # vault_id are printed side by side (other tables print one of them, not both).
    rows = [
        row for row in _header_rows(pdf, RPO_HEADERS)
        if {"resource_id", "vault_id"} <= {text for text, _, _ in row}
    ]  # fmt: skip
    assert rows, "no printed header row of the RPO table"
    for row in rows:
        assert [text for text, _, _ in row] == list(RPO_HEADERS)
        assert all(0 <= x < width - 20 for _, x, width in row), row


@pytest.mark.parametrize("options", [["--min-days", "0"], ["--max-age", "0m"]])
def test_zero_thresholds_and_ages_still_draw(tmp_path: Path, options: list[str]) -> None:
    """Log axes with a zero --min-days or --max-age, and a backup of age 0, once crashed."""
    record = {
        "id": "b1", "status": "available", "image_type": "backup", "resource_id": "r1",
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        "expired_at": "2026-01-11T00:00:00Z",
    }  # fmt: skip
    (tmp_path / "b.json").write_text('{"count": 1, "backups": [' + json.dumps(record) + "]}")
    out = tmp_path / "r.html"
    done = CliRunner().invoke(
        main, ["report", "--from", str(tmp_path / "b.json"), *options, "-o", str(out)]
    )
    assert done.exit_code == 0, done.output + str(done.exception)
    assert out.stat().st_size > 0
