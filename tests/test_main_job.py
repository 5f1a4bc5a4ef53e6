"""`tokenbook run --demo`: the main job end to end on a small demo, as `make run` runs it."""

from __future__ import annotations

import json
import re

import duckdb
import pytest
from typer.testing import CliRunner

from tokenbook.cli import app


@pytest.fixture(scope="module")
def main_job(tmp_path_factory):
    base = tmp_path_factory.mktemp("mainjob")
    wh = base / "wh.duckdb"
    args = ["run", "--demo", "--days", "35", "--end", "2026-11-27", "--scale", "0.015",
            "--data-dir", str(base / "demo"), "--warehouse", f"duckdb:///{wh}",
            "--report", str(base / "report.html")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    manifest = json.loads((base / "demo" / "manifest.json").read_text())
    return {"base": base, "wh": wh, "out": result.output, "manifest": manifest, "args": args}


def test_summary_names_what_a_reader_needs(main_job):
    out = main_job["out"]
    for needle in ("Spend in October 2026 by feature", "Cache, last 4 weeks", "Forecast",
                   "Report:", "total time"):
        assert needle in out, (needle, out)
    # the ingest line adds up, and equals what the demo planted
    m = re.search(r"read ([\d,]+) = loaded ([\d,]+) \+ quarantined ([\d,]+) \+ duplicates ([\d,]+)",
                  out)
    assert m, out
    read, loaded, quarantined, dupes = (int(g.replace(",", "")) for g in m.groups())
    assert read == loaded + quarantined + dupes
    expected = main_job["manifest"]["expected"]
    assert (read, loaded) == (expected["rows_read"], expected["rows_loaded"])


def test_every_layer_landed(main_job):
    con = duckdb.connect(str(main_job["wh"]))
    try:
        loaded = con.execute("select count(*) from raw.gateway_calls").fetchone()[0]
        facts = con.execute("select count(*) from marts.fct_llm_calls").fetchone()[0]
        dupes_across_files = main_job["manifest"]["duplicates"]["next_file"]
        assert facts == loaded - dupes_across_files  # staging dedupes re-sent records
        for table in ("mart_cost_per_outcome", "mart_chargeback", "mart_reconciliation",
                      "fct_focus_cost", "mart_routing_opportunities", "forecast_monthly",
                      "anomaly_flags", "mart_finops_kpis"):
            n = con.execute(f"select count(*) from marts.{table}").fetchone()[0]
            assert n > 0, table
        # forecast-reading marts were rebuilt after the forecast step: they see its as_of
        fc = con.execute("select max(as_of) from marts.forecast_monthly").fetchone()[0]
        assert str(fc) == "2026-11-27"
        assert con.execute("select count(*) from raw.billing_lines").fetchone()[0] > 0
        assert con.execute("select count(*) from raw.evals").fetchone()[0] > 0
    finally:
        con.close()
    assert (main_job["base"] / "report.html").stat().st_size > 10_000


def test_rerun_reuses_the_demo_and_changes_no_data(main_job):
    con = duckdb.connect(str(main_job["wh"]))
    before = con.execute(
        "select count(*), sum(effective_cost_usd) from marts.fct_llm_calls").fetchone()
    con.close()
    args = [*main_job["args"], "--skip-forecast"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "demo data already in" in result.output
    con = duckdb.connect(str(main_job["wh"]))
    after = con.execute(
        "select count(*), sum(effective_cost_usd) from marts.fct_llm_calls").fetchone()
    con.close()
    assert after == before


def test_bad_flags_say_what_to_do(tmp_path):
    r = CliRunner().invoke(app, ["run", "--from", "2026-11-01"])
    assert r.exit_code != 0 and "--from and --to" in r.output
    r = CliRunner().invoke(app, ["run", "--data-dir", str(tmp_path), "--warehouse",
                                 f"duckdb:///{tmp_path / 'w.duckdb'}"])
    assert r.exit_code != 0 and "--demo" in r.output
