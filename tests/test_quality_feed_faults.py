"""`tokenbook check` used by a platform team on its own organisation: a network of veterinary
clinics whose gateway logs only (no vendor billing export is loaded), written here and loaded
day by day with the real CLI, then broken the ways a real feed breaks.

- an exporter that re-sends yesterday's file with a partial today: the volume looks normal,
  the records are yesterday's; the check must say so, naming the date they were first loaded;
- a restatement of a day (the same day loaded again) is not a re-delivery;
- a day at a tenth of its volume says how many calls came against how many usually do;
- a gateway-only organisation passes, and is told that the billing suites did not run;
- a date in the future is a usage error, not a "missing delivery" stored in the results.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from statistics import median

import duckdb
import pytest
from typer.testing import CliRunner

from tokenbook.cli import app
from tokenbook.exitcodes import QUALITY_FAILED, USAGE

FIRST = date(2026, 10, 5)  # a Monday: four weeks of history up to 11-01
HEALTHY = date(2026, 11, 2)
RESENT = date(2026, 11, 3)  # half of its own calls, plus all of 11-02's again
LOW = date(2026, 11, 4)  # a tenth of its calls
FEATURES = ("triage_assistant", "record_summarizer", "appointment_bot", "lab_report_explainer")
SEGMENTS = ("clinic", "hospital", "partner")
MODELS = (("openai", "gpt-4.1-mini"), ("anthropic", "claude-haiku-4-5"))


def _day(day: date, share: float = 1.0) -> list[dict]:
    rng = random.Random(day.toordinal())
    n = int((300 if day.weekday() < 5 else 110) * share * rng.uniform(0.95, 1.05))
    out = []
    for i in range(n):
        provider, model = MODELS[i % 2]
        out.append({
            "request_id": f"vetnet-{day:%Y%m%d}-{i:05d}",
            "timestamp": datetime(day.year, day.month, day.day, i % 24, i % 60).isoformat() + "Z",
            "provider": provider, "model": model,
            "input_tokens": rng.randint(900, 2400), "output_tokens": rng.randint(80, 400),
            "feature": FEATURES[i % 4], "customer_segment": SEGMENTS[i % 3],
            "team": "care-ai", "latency_ms": rng.randint(200, 3000), "status": "ok",
            "cost_usd": round(0.0015 * rng.uniform(0.9, 1.1), 7),
        })
    return out


def _write(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _cli(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def clinics(tmp_path_factory, monkeypatch_module):
    base = tmp_path_factory.mktemp("vetnet")
    monkeypatch_module.setenv("TOKENBOOK_ALLOW_DEV_KEY", "1")
    monkeypatch_module.setenv("TOKENBOOK_CONFIG_DIR", str(base / "config"))  # nothing set
    wh = f"duckdb:///{base / 'wh.duckdb'}"
    day = FIRST
    while day <= HEALTHY:  # the nightly loads, one date at a time
        f = _write(base / "gw" / f"vetnet-{day}.jsonl", _day(day))
        out = _cli("ingest", "gateway", str(f), "--date", str(day), "--warehouse", wh)
        assert out.exit_code == 0, out.output
        day += timedelta(days=1)
    # 11-03: the exporter died half-way and re-sent 11-02's file along with it
    folder = base / "gw-resent"
    _write(folder / "vetnet-2026-11-03.jsonl", _day(RESENT, share=0.5))
    _write(folder / "vetnet-2026-11-02.jsonl", _day(HEALTHY))
    out = _cli("ingest", "gateway", str(folder), "--date", str(RESENT), "--warehouse", wh)
    assert out.exit_code == 0, out.output
    f = _write(base / "gw" / f"vetnet-{LOW}.jsonl", _day(LOW, share=0.1))
    out = _cli("ingest", "gateway", str(f), "--date", str(LOW), "--warehouse", wh)
    assert out.exit_code == 0, out.output
    return {"base": base, "wh": wh}


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _check(clinics, *args: str):
    return _cli("check", *args, "--warehouse", clinics["wh"])


def test_a_day_that_carries_an_earlier_days_records_fails_naming_that_day(clinics):
    out = _check(clinics, "--date", str(RESENT))
    assert out.exit_code == QUALITY_FAILED, out.output
    (line,) = [ln for ln in out.output.splitlines() if "redelivered_share" in ln]
    # about two thirds of the day's records were 11-02's, re-sent: said with where they came from
    assert line.startswith(f"FAILED {RESENT} gateway_load: redelivered_share = 0.6")
    assert f"first loaded on {HEALTHY}" in line and "expected <= 0.05" in line
    assert "source_file" in line  # what to look at
    # the volume alone would not have told: half a day plus a whole re-sent one looks normal
    assert "volume_ratio" not in out.output


def test_a_restated_day_is_not_a_redelivery(clinics):
    """Loading the same date again replaces its partition: its records are not 'earlier'."""
    f = clinics["base"] / "gw" / f"vetnet-{HEALTHY}.jsonl"
    out = _cli("ingest", "gateway", str(f), "--date", str(HEALTHY), "--warehouse", clinics["wh"])
    assert out.exit_code == 0, out.output
    out = _check(clinics, "--date", str(HEALTHY))
    assert out.exit_code == 0, out.output


def test_a_low_day_says_how_many_calls_came_against_how_many_usually_do(clinics):
    out = _check(clinics, "--date", str(LOW))
    assert out.exit_code == QUALITY_FAILED, out.output
    (line,) = [ln for ln in out.output.splitlines() if "volume_ratio" in ln]
    calls = len(_day(LOW, share=0.1))
    usual = median(len(_day(FIRST + timedelta(days=d))) for d in (2, 9, 16, 23))  # Wednesdays
    assert f"({calls} calls vs a median of {usual:g} on the same weekday)" in line


def test_a_gateway_only_organisation_passes_and_is_told_billing_was_not_checked(clinics):
    out = _check(clinics, "--date", str(HEALTHY))
    assert out.exit_code == 0, out.output
    assert "billing suites (billing_coverage, billing_totals) did not run" in out.output
    assert "tokenbook ingest billing" in out.output


def test_a_date_in_the_future_is_a_usage_error_and_stores_nothing(clinics):
    later = datetime.now(UTC).date() + timedelta(days=40)
    out = _check(clinics, "--date", str(later))
    assert out.exit_code == USAGE, out.output
    assert "in the future" in out.output
    out = _check(clinics, "--from", str(HEALTHY), "--to", str(later))
    assert out.exit_code == USAGE, out.output
    con = duckdb.connect(str(clinics["base"] / "wh.duckdb"), read_only=True)
    try:
        stored = con.execute("select count(*) from raw.validation_results where load_date > ?",
                             [LOW]).fetchall()[0][0]
    finally:
        con.close()
    assert stored == 0


def test_a_required_field_renamed_upstream_is_refused_naming_the_field(clinics):
    """`input_tokens` arrives as `prompt_tokens` in every record: nothing can load, and the
    refusal says why (before: only 'the delivery has no valid record')."""
    day = LOW + timedelta(days=1)
    records = _day(day)
    for r in records:
        r["prompt_tokens"] = r.pop("input_tokens")
    f = _write(clinics["base"] / "gw-renamed" / f"vetnet-{day}.jsonl", records)
    out = _cli("ingest", "gateway", str(f), "--date", str(day), "--warehouse", clinics["wh"])
    assert out.exit_code == 1, out.output
    assert "load refused, nothing was changed" in out.output
    assert f"{len(records):,} record(s): missing required field: input_tokens" in out.output


def test_a_day_that_never_came_says_why_its_comparisons_were_skipped(clinics):
    """Not 'too little history' (four weeks are there): nothing was loaded to compare."""
    day = LOW + timedelta(days=2)
    out = _check(clinics, "--date", str(day))
    assert out.exit_code == QUALITY_FAILED, out.output
    assert f"FAILED {day} gateway_freshness: rows_loaded = 0" in out.output
    (line,) = [ln for ln in out.output.splitlines() if ln.startswith("not evaluable")]
    assert "no call loaded for this date x" in line and "too little history" not in line
