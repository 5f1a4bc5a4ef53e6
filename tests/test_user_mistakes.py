"""The mistakes people make in their first week (issue 21), through the real `tokenbook` CLI on
a real DuckDB warehouse: nothing a user gets wrong erases data, every failure is a sentence
(exit code from tokenbook/exitcodes.py, no traceback), and piped output reads well.

Names here are not the demo's: features ledger_search, invoice_reader, route_planner."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from core.settings import load_settings
from ingestion.gateway.pipeline import LoadRefused, ingest_gateway
from ingestion.raw import guard
from tokenbook import exitcodes
from tokenbook.cli import app

BILLING = Path(__file__).resolve().parent / "fixtures" / "billing"
DAY = date(2026, 11, 10)
FEATURES = ("ledger_search", "invoice_reader", "route_planner")


def _records(n: int, day: date = DAY, prefix: str = "q") -> list[str]:
    return [
        json.dumps({
            "request_id": f"{prefix}{i}", "timestamp": f"{day.isoformat()}T{i % 24:02d}:15:00Z",
            "provider": "openai", "model": "gpt-4o-mini", "input_tokens": 100 + i,
            "output_tokens": 20, "feature": FEATURES[i % 3], "customer_segment": "smb",
        })
        for i in range(n)
    ]


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + ("\n" if lines else "")
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def _wh(tmp_path: Path) -> str:
    return f"duckdb:///{tmp_path / 'wh.duckdb'}"


def _settings(tmp_path: Path):
    return load_settings(warehouse=_wh(tmp_path), pii_key="test-pii-key")


def _state(tmp_path: Path, table: str = "raw.gateway_calls") -> tuple[int, str]:
    """Row count and a content hash of a warehouse table (order-independent)."""
    con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    try:
        rows = sorted(map(repr, con.execute(f"select * from {table}").fetchall()))
    finally:
        con.close()
    return len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()


def _audit(tmp_path: Path) -> list[tuple]:
    con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    try:
        return con.execute(
            "select source, load_date, rows_read, rows_loaded, status from raw.load_audit "
            "order by started_at, source_file"
        ).fetchall()
    finally:
        con.close()


def _cli(*args: str, env: dict | None = None):
    result = CliRunner().invoke(app, list(args), env=env)
    # a user never sees a traceback, whatever happened
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def loaded(tmp_path):
    """A warehouse holding 30 calls for DAY (loaded without the GX checkpoint)."""
    _write(tmp_path / "full.jsonl", _records(30))
    ingest_gateway([str(tmp_path / "full.jsonl")], _settings(tmp_path), date=DAY)
    return tmp_path


# ------------------------------------------------------------------ a load never shrinks a day


def test_an_empty_delivery_is_refused_and_the_day_is_unchanged(loaded):
    before = _state(loaded)
    empty = _write(loaded / "empty.jsonl", [])
    res = _cli("ingest", "gateway", str(empty), "--date", DAY.isoformat(),
               "--warehouse", _wh(loaded))
    assert res.exit_code == exitcodes.INPUT_REFUSED == 1
    text = " ".join(res.output.split())
    for words in ("load refused", "nothing was changed", "gateway 2026-11-10", "holds 30 rows",
                  "offers 0", "no valid record", "--replace"):
        assert words in text, words
    assert _state(loaded) == before == (30, before[1])
    # the refusal is recorded (counts are what the delivery held)
    assert _audit(loaded)[-1] == ("gateway", DAY, 0, 0, guard.REFUSED)


def test_a_delivery_of_only_bad_records_is_refused(loaded):
    before = _state(loaded)
    bad = _write(loaded / "bad.jsonl", ['{"request_id": "z1", "timestamp": "2026-11-10T01:00:00Z"}'])
    res = _cli("ingest", "gateway", str(bad), "--date", DAY.isoformat(), "--warehouse", _wh(loaded))
    assert res.exit_code == 1 and "holds 30 rows" in res.output and "offers 0" in res.output
    assert _state(loaded) == before
    # quarantined lines of a refused load are not stored either
    assert _state(loaded, "raw.quarantine")[0] == 0


def test_shrinking_a_day_by_more_than_90_percent_is_refused_unless_replace(loaded):
    before = _state(loaded)
    two = _write(loaded / "two.jsonl", _records(2, prefix="s"))
    res = _cli("ingest", "gateway", str(two), "--date", DAY.isoformat(), "--warehouse", _wh(loaded))
    assert res.exit_code == 1
    text = " ".join(res.output.split())
    assert "holds 30 rows and the load offers 2" in text and "remove 93.3% of the rows" in text
    assert _state(loaded) == before
    # the same in Python: LoadRefused carries each partition
    with pytest.raises(LoadRefused) as refused:
        ingest_gateway([str(two)], _settings(loaded), date=DAY)
    assert refused.value.shrinks == [guard.Shrink("gateway 2026-11-10", 30, 2)]
    # --replace confirms: the day now holds the two calls
    ingest_gateway([str(two)], _settings(loaded), date=DAY, replace=True)
    assert _state(loaded)[0] == 2


def test_an_honest_restatement_keeping_more_than_10_percent_loads(loaded):
    four = _write(loaded / "four.jsonl", _records(4, prefix="h"))
    report = ingest_gateway([str(four)], _settings(loaded), date=DAY)
    assert report.rows_loaded == 4 and _state(loaded)[0] == 4
    assert _audit(loaded)[-1][-1] == "loaded"


def test_billing_of_another_vendor_or_empty_is_refused_and_lines_are_kept(tmp_path):
    wh = _wh(tmp_path)
    ok = _cli("ingest", "billing", "--vendor", "anthropic",
              str(BILLING / "anthropic_usage_messages_page1.json"), "--warehouse", wh)
    assert ok.exit_code == 0, ok.output
    before = _state(tmp_path, "raw.billing_lines")
    assert before[0] == 8
    # an OpenAI file given as anthropic: named for what it is
    res = _cli("ingest", "billing", "--vendor", "anthropic",
               str(BILLING / "openai_usage_completions_page1.json"), "--date", "2026-11-02",
               "--warehouse", wh)
    assert res.exit_code == 1
    assert "is an OpenAI usage/costs API export" in res.output
    assert "pass --vendor openai" in res.output
    # an empty export for the loaded date: refused by the shrink guard, recorded in the audit
    empty = _write(tmp_path / "anthropic-empty.json", [])
    res = _cli("ingest", "billing", "--vendor", "anthropic", str(empty), "--date", "2026-11-02",
               "--warehouse", wh)
    assert res.exit_code == 1
    text = " ".join(res.output.split())
    assert "billing anthropic 2026-11-02 holds 8 rows and the load offers 0" in text
    assert "--replace" in text
    assert _state(tmp_path, "raw.billing_lines") == before
    assert _audit(tmp_path)[-1] == ("billing_anthropic", date(2026, 11, 2), 0, 0, "refused")
    # without --date an empty export is called empty, with no advice to pass a date
    res = _cli("ingest", "billing", "--vendor", "anthropic", str(empty), "--warehouse", wh)
    assert res.exit_code == 1 and "holds no billing line" in res.output
    assert "--date" not in res.output


def test_evals_with_no_valid_line_are_refused(tmp_path):
    wh = _wh(tmp_path)
    good = tmp_path / "evals.csv"
    good.write_text("eval_date,feature,provider,model,eval_name,score,passed\n"
                    "2026-11-10,ledger_search,openai,gpt-4o-mini,faithfulness,0.91,true\n")
    assert _cli("ingest", "evals", str(good), "--warehouse", wh).exit_code == 0
    before = _state(tmp_path, "raw.evals")
    bad = tmp_path / "evals-bad.csv"
    bad.write_text("eval_date,feature,provider,model,eval_name,score,passed\n"
                   "2026-11-10,ledger_search,openai,gpt-4o-mini,faithfulness,high,true\n")
    res = _cli("ingest", "evals", str(bad), "--warehouse", wh)
    assert res.exit_code == 1
    assert "no valid eval line" in res.output and "non-numeric score" in res.output
    assert "--date" not in res.output
    res = _cli("ingest", "evals", str(bad), "--date", "2026-11-10", "--warehouse", wh)
    assert res.exit_code == 1 and "evals 2026-11-10" in res.output and "--replace" in res.output
    assert _state(tmp_path, "raw.evals") == before
    assert _audit(tmp_path)[-1][-1] == "refused"


# ------------------------------------------------------------------ say what the file is


def test_each_wrong_file_is_named_for_what_it_is(tmp_path):
    wh = _wh(tmp_path)
    csv = tmp_path / "calls.csv"
    csv.write_text("request_id,timestamp,model\nq1,2026-11-10T01:00:00Z,gpt-4o\n")
    doc = tmp_path / "calls.json"
    doc.write_text(json.dumps({"request_id": "q1", "timestamp": "2026-11-10T01:00:00Z"},
                              indent=2))
    pq.write_table(pa.table({"request_id": ["q1"], "timestamp": ["2026-11-10T01:00:00Z"]}),
                   tmp_path / "calls.parquet")
    empty = _write(tmp_path / "empty.jsonl", [])
    cases = {
        csv: "is a CSV file (columns request_id, timestamp, model)",
        doc: "is one JSON document spread over several lines, not JSON lines",
        tmp_path / "calls.parquet": "has no column",
        BILLING / "openai_costs_page1.json": "is an OpenAI usage/costs API export, not gateway "
                                             "logs: load it with `tokenbook ingest billing "
                                             "--vendor openai`",
        empty: "holds no record (an empty file or only blank lines): nothing to load",
    }
    for path, words in cases.items():
        res = _cli("ingest", "gateway", str(path), "--warehouse", wh)
        text = " ".join(res.output.split())
        assert res.exit_code == 1, (path, res.output)
        assert words in text, (path, text)
        # the advice to pass --date is only for valid but undatable files: none of these
        assert "pass --date" not in text, path
        if path in (csv, doc):  # and it says which formats the command reads
            assert "ingest gateway reads gateway logs as JSON lines" in text


def test_a_damaged_gzip_names_the_file_and_the_byte(tmp_path):
    data = gzip.compress(("\n".join(_records(3000)) + "\n").encode())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    flipped[40] ^= 0xFF
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(bytes(flipped))
    for path, words in ((cut, "is a gzip file cut short"), (broken, "is a damaged gzip file")):
        res = _cli("ingest", "gateway", str(path), "--warehouse", _wh(tmp_path))
        assert res.exit_code == 1, res.output
        text = " ".join(res.output.split())
        assert f"{path} {words}" in text and re.search(r"byte [\d,]+", text), text


# ------------------------------------------------------------------ no traceback reaches a user


def test_a_locked_warehouse_names_the_process_and_ingest_waits(loaded):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True);"
         " time.sleep(60)", str(loaded / "wh.duckdb")],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        t0 = time.perf_counter()
        res = _cli("ingest", "gateway", str(loaded / "full.jsonl"), "--date", DAY.isoformat(),
                   "--warehouse", _wh(loaded), env={"TOKENBOOK_LOCK_WAIT_SECONDS": "1.5"})
        waited = time.perf_counter() - t0
    finally:
        holder.kill()
        holder.wait()
    assert res.exit_code == 1
    text = " ".join(res.output.split())
    assert f"in use by another process (PID {holder.pid})" in text
    assert "another tokenbook command" in text and "TOKENBOOK_LOCK_WAIT_SECONDS" in text
    assert re.search(r"waited [\d.]+ s", text)
    assert waited >= 1.5


@pytest.mark.parametrize("command", [
    ["forecast"], ["report", "--month", "2026-11"],
    ["export", "chargeback", "--month", "2026-11", "--out", "x.csv"],
    ["ingest", "gateway", "DAYFILE", "--date", "2026-11-10"],
    ["ingest", "billing", "--vendor", "anthropic",
     str(BILLING / "anthropic_usage_messages_page1.json")],
])
def test_missing_bigquery_credentials_say_the_same_thing_everywhere(command, tmp_path):
    day = _write(tmp_path / "day.jsonl", _records(3))
    command = [str(day) if c == "DAYFILE" else c for c in command]
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "no-such-key.json")}
    res = _cli(*command, "--warehouse", "bigquery://acme-finops/tb", env=env)
    assert res.exit_code == exitcodes.CONFIG_INVALID, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert lines[-1].startswith("error: no BigQuery credentials: set TOKENBOOK_BQ_KEYFILE")


def test_an_unexpected_error_is_one_line_a_log_file_and_exit_70(tmp_path, monkeypatch):
    import ingestion.gateway.pipeline as pipeline

    def boom(*args, **kwargs):
        raise ZeroDivisionError("division by zero in a place nobody expected")

    monkeypatch.setattr(pipeline, "ingest_gateway", boom)
    path = _write(tmp_path / "day.jsonl", _records(3))
    env = {"TOKENBOOK_LOG_DIR": str(tmp_path / "logs")}
    res = _cli("ingest", "gateway", str(path), "--warehouse", _wh(tmp_path), env=env)
    assert res.exit_code == exitcodes.INTERNAL == 70
    (line,) = [ln for ln in res.output.splitlines() if ln.strip()]
    assert line.startswith("error: unexpected ZeroDivisionError: division by zero")
    (log,) = (tmp_path / "logs").glob("error-*.log")
    assert str(log) in line and "--debug" in line
    assert "Traceback" in log.read_text() and "def boom" not in line
    # --debug shows the traceback itself
    res = CliRunner().invoke(app, ["--debug", "ingest", "gateway", str(path),
                                   "--warehouse", _wh(tmp_path)], env=env)
    assert res.exit_code == 70 and "Traceback" in res.output and "ZeroDivisionError" in res.output


# ------------------------------------------------------------------ output


def test_piped_ingest_output_has_no_escape_codes_and_no_broken_paths(tmp_path, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    deep = tmp_path / "a-folder-with-a-long-name-for-exports" / "gateway-2026-11-10-region-eu.jsonl"
    _write(deep, _records(12))
    assert len(str(deep)) > 80
    res = _cli("ingest", "gateway", str(deep), "--date", DAY.isoformat(),
               "--warehouse", _wh(tmp_path))
    assert res.exit_code in (0, exitcodes.QUALITY_FAILED), res.output
    assert "\x1b[" not in res.output
    assert any(str(deep) in line for line in res.output.splitlines()), res.output


def test_version_and_every_help_ends_with_an_example():
    res = _cli("--version")
    assert res.exit_code == 0 and re.fullmatch(r"tokenbook \d+\.\d+\S*\n", res.output)
    commands = [["demo-data"], ["transform"], ["run"], ["forecast"], ["report"],
                ["ingest", "gateway"], ["ingest", "billing"], ["ingest", "evals"],
                ["prices", "load"], ["prices", "show"], ["export", "chargeback"],
                ["export", "focus"]]
    for command in commands:
        res = _cli(*command, "--help")
        assert res.exit_code == 0, command
        # what follows the last panel of options is the example (maybe wrapped)
        tail = " ".join(res.output.rsplit("╯", 1)[-1].split())
        assert tail.startswith(f"Example: tokenbook {' '.join(command)}"), (command, tail)


# ------------------------------------------------------------------ the report


def _page(data_start: date, data_end: date, month: date, frames: dict | None = None):
    import pandas as pd

    from tokenbook.report.data import ReportData, Result
    from tokenbook.report.render import Page
    from tokenbook.report.sql import Period, Query

    data = ReportData(period=Period(month, data_end, None, None), data_start=data_start)
    for name, (tables, rows) in (frames or {}).items():
        data.results[name] = Result(Query(name, "select 1", tables), "select 1",
                                    pd.DataFrame(rows))
    return Page(data)


def test_report_labels_partial_months_from_the_ledger_dates():
    page = _page(date(2026, 8, 12), date(2026, 11, 20), date(2026, 10, 1))
    assert page.partial(date(2026, 8, 1)) == "partial: the ledger starts Aug 12"
    assert page.partial(date(2026, 9, 1)) == ""
    assert page.partial(date(2026, 11, 1)) == "partial: the ledger ends Nov 20"
    assert page.partial(date(2026, 12, 1)) == ""  # after the ledger: a forecast month
    # the forecast table marks the partial actual months, never a future one
    months = [date(2026, 8, 1), date(2026, 9, 1), date(2026, 11, 1), date(2026, 12, 1)]
    page = _page(date(2026, 8, 12), date(2026, 11, 20), date(2026, 10, 1), {
        "forecast_monthly": (("forecast_monthly",), {
            "month": months, "month_kind": ["actual", "actual", "actual", "future"]})})
    cells = [page._coverage_cell("forecast_monthly")(r) for r in range(4)]
    assert [("partial" in c) for c in cells] == [True, False, True, False]


def test_report_empty_sections_say_which_command_fills_them():
    from tokenbook.report.data import how_to_fill

    assert "`tokenbook forecast`" in how_to_fill(["forecast_monthly"])
    assert "`tokenbook ingest billing`" in how_to_fill(["mart_reconciliation"])
    assert "`tokenbook transform`" in how_to_fill(["mart_cost_per_outcome"])
    page = _page(date(2026, 8, 1), date(2026, 11, 20), date(2026, 10, 1), {
        "anomalies": (("anomaly_flags",), {})})
    html_ = page.table("anomalies", [("ds", "Day", "date")])
    assert "No rows for this period. To fill it: run `tokenbook forecast`" in html_.replace(
        "&#x27;", "'").replace("&#96;", "`")


def test_report_unit_costs_keep_their_precision():
    from tokenbook.report.render import fmt
    from tokenbook.runner.summary import _unit_money

    assert fmt(0.00042, "usd") == "$0.000420" and fmt(0.0042, "usd") == "$0.0042"
    assert fmt(12.5, "usd") == "$12.50" and fmt(0, "usd") == "$0"
    assert _unit_money(0.0042) == "$0.00420" and _unit_money(0.00000731) == "$0.00000731"
    assert _unit_money(3.456) == "$3.46"


def test_weekly_chart_sums_features_beyond_the_top_as_other():
    import base64

    import pandas as pd

    from tokenbook.report import charts

    names = [f"feature_{c}" for c in "abcdefghi"]  # nine features, the chart draws seven
    weeks = [date(2026, 11, 2), date(2026, 11, 9)]
    weekly = pd.DataFrame([{"feature": n, "week_start": w, "effective_cost_usd": 10.0 + i}
                           for i, n in enumerate(names) for w in weeks])
    uri = charts.feature_trend(weekly, "effective_cost_usd", "Weekly spend", names[:7])
    svg = base64.b64decode(uri.split(",", 1)[1]).decode()
    # the legend names the seven and "other" (the eighth and ninth summed), not the two
    assert "<!-- other -->" in svg and "<!-- feature_h -->" not in svg
    assert all(f"<!-- {n} -->" in svg for n in names[:7])


def test_piped_transform_names_failures_and_where_the_log_went(tmp_path, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    target = tmp_path / "a-run-folder-whose-name-is-long-enough-to-wrap-at-eighty-columns"
    # the staging model alone: dbt also selects a test reading a mart not built here, which
    # errors; the terminal names it in a few plain lines, dbt's log is in its file
    res = _cli("transform", "--select", "stg_gateway__calls", "--warehouse", _wh(tmp_path),
               env={"TOKENBOOK_DBT_TARGET_PATH": str(target)})
    assert res.exit_code == exitcodes.INPUT_REFUSED, res.output
    assert "\x1b[" not in res.output
    lines = res.output.splitlines()
    assert len(lines) <= 6, res.output
    assert "priced_plus_unpriced_equals_staging_fct_llm_calls" in res.output
    log = target / "logs" / "dbt.log"
    assert f"dbt log: {log}" in lines and log.read_text().strip()


def test_dbt_stage_lines_count_each_stage_and_name_failures():
    from types import SimpleNamespace as NS

    from tokenbook.dbt import stage_lines

    def node(kind, name, status):
        return NS(node=NS(resource_type=kind, name=name), status=status)

    result = NS(result=NS(results=[
        node("seed", "teams", "success"), node("model", "stg_a", "success"),
        node("model", "fct_b", "error"), node("model", "mart_c", "skipped"),
        node("test", "not_null_a", "pass"), node("test", "unique_b", "fail"),
        node("test", "accepted_c", "warn"), node("unit_test", "u1", "pass"),
    ]))
    assert stage_lines(result) == [
        "seeds: 1 loaded",
        "models: 1 built, 1 errored (fct_b), 1 skipped",
        "unit tests: 1 passed",
        "data tests: 1 passed, 1 failed (unique_b), 1 warned (accepted_c)",
    ]


# ------------------------------------------------------------------ orchestration


def test_the_quality_gate_judges_the_last_published_load_not_a_refusal(loaded):
    from tokenbook import orchestration as orch

    settings = _settings(loaded)
    with pytest.raises(LoadRefused):
        ingest_gateway([str(_write(loaded / "empty.jsonl", []))], settings, date=DAY)
    orch.check_data_quality(DAY, settings)  # the suites judge the published load too
    gate = orch.check_quality(DAY, settings)
    assert (gate["rows_loaded"], gate["failed"]) == (30, 0)


def test_run_date_writes_the_report_where_report_says(tmp_path, monkeypatch):
    """`tokenbook run --date D --report PATH`: the month's report lands at PATH (it used to stay
    under out/ only), and the summary ends with where the report and exports went."""
    from tokenbook import orchestration as orch

    out = tmp_path / "out"

    def publish(run_date, settings, inputs, outputs=None):
        (out / "reports").mkdir(parents=True)
        html_ = out / "reports" / "tokenbook-report-2026-11.html"
        html_.write_text("<html>the month</html>")
        (out / "exports").mkdir()
        csv = out / "exports" / "chargeback-2026-11.csv"
        csv.write_text("team,usd\n")
        return {"written": [str(csv), str(html_)]}

    for step in ("ingest_gateway_day", "ingest_billing_day", "check_data_quality",
                 "check_quality", "build_models", "score_anomalies"):
        monkeypatch.setattr(orch, step, lambda *a, **k: {})
    monkeypatch.setattr(orch, "is_refit_day", lambda d: False)
    monkeypatch.setattr(orch, "publish_outputs", publish)
    (tmp_path / "data" / "gateway").mkdir(parents=True)
    target = tmp_path / "mine" / "nightly.html"
    res = _cli("run", "--date", "2026-11-10", "--data-dir", str(tmp_path / "data"),
               "--report", str(target), "--warehouse", _wh(tmp_path))
    assert res.exit_code == 0, res.output
    assert target.read_text() == "<html>the month</html>"
    lines = res.output.splitlines()
    assert f"Report: {target.resolve()}" in lines
    assert f"Export: {(out / 'exports' / 'chargeback-2026-11.csv').resolve()}" in lines
    assert f"tokenbook on {(tmp_path / 'wh.duckdb').resolve()}" in lines


@pytest.mark.parametrize("dates", [("--date",), ("--from", "--to")])
def test_run_for_a_night_that_has_not_begun_is_refused_before_anything_runs(
        tmp_path, monkeypatch, dates):
    """`tokenbook run --date D` (or a backfill to D) with D after tomorrow in UTC used to set
    up, then fail at ingest with "no gateway file"; it is a usage error up front now."""
    from datetime import UTC, datetime, timedelta

    from tokenbook import orchestration as orch

    ran = []
    monkeypatch.setattr(orch, "ingest_gateway_day", lambda *a, **k: ran.append(a) or {})
    later = datetime.now(UTC).date() + timedelta(days=40)
    args = (["--date", str(later)] if dates == ("--date",)
            else ["--from", str(later - timedelta(days=50)), "--to", str(later)])
    (tmp_path / "data" / "gateway").mkdir(parents=True)
    res = _cli("run", *args, "--data-dir", str(tmp_path / "data"), "--warehouse", _wh(tmp_path))
    assert res.exit_code == exitcodes.USAGE, res.output
    said = " ".join(res.output.replace("│", " ").split())  # typer's panel wraps the text
    assert f"{args[-2]} {later} is in the future" in said
    assert "run nights that have begun" in said
    assert ran == []
    # today's night (and tomorrow's, for a clock ahead of UTC) is not refused by this rule
    res = _cli("run", "--date", str(datetime.now(UTC).date()), "--data-dir",
               str(tmp_path / "data"), "--warehouse", _wh(tmp_path))
    assert "in the future" not in res.output


def test_json_lines_whose_first_line_is_broken_are_still_json_lines(tmp_path):
    """A truncated first record (a planted broken line in a real export) is quarantined like
    any bad line; the file is not taken for a multi-line JSON document."""
    for n, first in enumerate(('{"request_id": "t0", "timestamp": "2026-11-10T01:00:00Z", "pr',
                               "garbage before the records", "42")):
        f = _write(tmp_path / f"day{n}.jsonl.gz", [first, *_records(5)])
        report = ingest_gateway([str(f)], _settings(tmp_path / str(n)), date=DAY)
        assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (6, 5, 1)
