"""bench/ingest.py runs end to end on a small generated file (a smoke run, not a timing: the
figures are printed by ``make bench``): its three children succeed, the real command loads
what the generator wrote, and every figure the closing notes quote is printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_ingest_bench_smoke_run_prints_every_figure() -> None:
    out = subprocess.run(
        [sys.executable, "bench/ingest.py", "--rows", "3000", "--repeat", "1", "--memory"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "GX_ANALYTICS_ENABLED": "False"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    # 3,000 records + 6 bad or duplicate lines: 5 quarantined, 1 duplicate, none lost
    assert "(3,000 loaded, 5 quarantined, 1 duplicates;" in text, text
    # the load never imports Great Expectations (the suites are `tokenbook check`)
    assert re.search(r"^GX on the ingest path\s*: great_expectations imported: False ", text,
                     re.M), text
    assert "(3,006 rows, ignore_errors=true" in text, text
    for label in ("bare read_json into a table", "tokenbook ingest gateway", "ratio",
                  "floor", "GX on the ingest path", "ingest stages (s)",
                  "peak RSS tokenbook ingest", "reader"):
        assert re.search(rf"^{re.escape(label)}\s*:", text, re.M), (label, text)

    def seconds(label: str) -> float:
        return float(re.search(rf"^{re.escape(label)}\s*:\s*([\d.]+) s wall", text, re.M)[1])

    # a 3,000-line file is under the size where the one-pass reader takes over; the same
    # command with it switched off runs beside it whenever it is built
    assert re.search(r"^reader\s*: DuckDB's exact single pass \(a file under 32 MB", text,
                     re.M), text
    from ingestion.gateway import jsonl_scan

    if jsonl_scan.available():
        assert re.search(r"^same ingest, DuckDB alone\s*:\s*[\d.]+ s wall", text, re.M), text
    bare = seconds("bare read_json into a table")
    ratio = float(re.search(r"^ratio\s*:\s*([\d.]+)x wall", text, re.M)[1])
    floor = float(re.search(r"^floor\s*:.*= ([\d.]+)x wall", text, re.M)[1])
    # the printed ratios are the printed medians divided: every figure is rounded to 2
    # decimals, so the ratio lies within what the rounded seconds allow
    half = 0.005
    for printed, part in ((ratio, seconds("tokenbook ingest gateway")),
                          (floor, seconds("floor"))):
        assert bare > half and part > half, text
        low = (part - half) / (bare + half) - half
        high = (part + half) / (bare - half) + half
        assert low <= printed <= high, (printed, part, bare)
