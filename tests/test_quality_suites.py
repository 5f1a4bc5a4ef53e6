"""`tokenbook check`: each suite compares a loaded partition with its own history.

Four weeks of a healthy gateway feed (written here, loaded by the real pipeline), then one date
per broken-feed scenario, each checked on its own: the scenario's expectation fails, the healthy
date passes every one. The unpriced share resolves models against dbt's price book (built by
dbt for real), and agrees with dbt's own int_model_resolution.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from core.settings import load_settings
from ingestion import quality
from ingestion.gateway.pipeline import ingest_gateway
from ingestion.quality_thresholds import DEFAULTS, ThresholdsError, load_thresholds
from tokenbook.cli import app
from tokenbook.exitcodes import QUALITY_FAILED

FIRST = date(2026, 10, 5)  # a Monday; 28 healthy days up to 11-01
HEALTHY = date(2026, 11, 2)
LOW_VOLUME = date(2026, 11, 3)  # 10% of the usual calls: an exporter died mid-day
NO_FEATURE = date(2026, 11, 4)  # a release stops sending `feature`
UNPRICED = date(2026, 11, 5)  # 20% of calls on a model no price book knows
RENAMED = date(2026, 11, 6)  # latency_ms renamed upstream to duration_ms
MISSING = date(2026, 11, 7)  # no delivery at all
HIGH_VOLUME = date(2026, 11, 8)  # the exporter ran three times over... with new ids
QUARANTINED = date(2026, 11, 9)  # 12% unparseable lines
DUPLICATED = date(2026, 11, 10)  # 15% of records sent twice
TOKENS_UP = date(2026, 11, 11)  # four times the tokens per call
COST_UP = date(2026, 11, 12)  # five times the gateway cost per call
BILL_GAP = date(2026, 11, 13)  # one vendor's bill for the day is missing
BILL_JUMP = date(2026, 11, 14)  # billed three times the gateway's cost
LAST = BILL_JUMP

FEATURES = ("ledger_search", "invoice_triage", "fx_alerts")
SEGMENTS = ("mid_market", "public_sector")
MODELS = (("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5"))


def _records(day: date, n: int, rng: random.Random, **change) -> list[dict]:
    out = []
    for i in range(n):
        provider, model = MODELS[i % 2]
        if change.get("unpriced") and i % 5 == 0:
            provider, model = "openai", "zz-inhouse-router-9"
        rec = {
            "request_id": f"{day:%Y%m%d}-{i}",
            "timestamp": datetime(day.year, day.month, day.day, 1 + i % 22, i % 60).isoformat()
            + "Z",
            "provider": provider, "model": model,
            "input_tokens": rng.randint(900, 1100) * change.get("tokens", 1),
            "output_tokens": rng.randint(90, 110) * change.get("tokens", 1),
            "feature": FEATURES[i % 3], "customer_segment": SEGMENTS[i % 2],
            "team": "fin-platform", "latency_ms": rng.randint(200, 900),
            "status": "ok", "service_tier": "default",
            "cost_usd": round(0.001 * rng.uniform(0.9, 1.1) * change.get("cost", 1), 6),
        }
        if change.get("no_feature"):
            del rec["feature"]
        if change.get("renamed"):
            rec["duration_ms"] = rec.pop("latency_ms")
        out.append(rec)
    return out


def _write_day(folder: Path, day: date, rng: random.Random, n: int = 120, **change) -> None:
    records = _records(day, n, rng, **change)
    lines = [json.dumps(r) for r in records]
    if change.get("bad"):
        lines += ['{"request_id": "broken' + str(k) for k in range(int(n * change["bad"]))]
    if change.get("dupes"):
        lines += lines[: int(n * change["dupes"])]
    (folder / f"calls-{day}.jsonl").write_text("\n".join(lines) + "\n")


def _billing(con, day: date, vendor: str, cost: float) -> None:
    con.execute(
        "insert into raw.billing_lines (load_date, vendor, record_type, line_id, usage_date, "
        "provider, billed_cost, currency) values (?, ?, 'cost', ?, ?, ?, ?, 'USD')",
        [day, vendor, f"{vendor}-{day}", day, vendor, cost],
    )


def _build(base: Path):
    """The warehouse: history, scenario days, billing lines and dbt's price book."""
    folder = base / "gateway"
    folder.mkdir()
    rng = random.Random(17)
    day = FIRST
    while day < HEALTHY:
        _write_day(folder, day, rng, n=120 + rng.randint(-6, 6))
        day += timedelta(days=1)
    _write_day(folder, HEALTHY, rng)
    _write_day(folder, LOW_VOLUME, rng, n=12)
    _write_day(folder, NO_FEATURE, rng, no_feature=True)
    _write_day(folder, UNPRICED, rng, unpriced=True)
    _write_day(folder, RENAMED, rng, renamed=True)
    _write_day(folder, HIGH_VOLUME, rng, n=360)
    _write_day(folder, QUARANTINED, rng, bad=0.12)
    _write_day(folder, DUPLICATED, rng, dupes=0.15)
    _write_day(folder, TOKENS_UP, rng, tokens=4)
    _write_day(folder, COST_UP, rng, cost=5)
    _write_day(folder, BILL_GAP, rng)
    _write_day(folder, BILL_JUMP, rng)
    settings = load_settings(warehouse=f"duckdb:///{base / 'wh.duckdb'}", pii_key="k",
                             dbt_target_path=str(base / "dbt"))
    ingest_gateway([str(folder)], settings)
    # the gateway's cost per day, billed at 1.1x by two vendors (half each), except the
    # scenarios' days
    from ingestion.billing.schema import BILLING_LINES_COLUMNS
    from ingestion.raw.schema import duckdb_ddl

    con = duckdb.connect(str(base / "wh.duckdb"))
    con.execute(duckdb_ddl("raw.billing_lines", BILLING_LINES_COLUMNS))
    daily = dict(con.execute(
        "select cast(call_ts as date), sum(gateway_cost_usd)::DOUBLE from raw.gateway_calls "
        "group by 1").fetchall())
    for d, cost in daily.items():
        factor = 3.3 if d == BILL_JUMP else 1.1
        _billing(con, d, "openai", cost * factor / 2)
        if d != BILL_GAP:
            _billing(con, d, "anthropic", cost * factor / 2)
    con.close()
    # the price book (seeds + int_price_book) and dbt's own resolution of the loaded models
    from tokenbook.dbt import ensure_raw_tables, run_dbt

    ensure_raw_tables(settings)
    run_dbt(["build", "--select", "+int_model_resolution", "--exclude", "resource_type:test",
             "resource_type:unit_test"], settings)
    return settings, folder


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    base = tmp_path_factory.mktemp("quality")
    settings, folder = _build(base)
    thresholds = load_thresholds(folder=base / "no-config")
    results = {d: quality.check_dates(settings, [d], thresholds)
               for d in (HEALTHY, LOW_VOLUME, NO_FEATURE, UNPRICED, RENAMED, MISSING,
                         HIGH_VOLUME, QUARANTINED, DUPLICATED, TOKENS_UP, COST_UP, BILL_GAP,
                         BILL_JUMP)}
    return {"settings": settings, "results": results, "base": base, "folder": folder}


def _failed(result) -> set[tuple[str, str]]:
    return {(o.suite, o.column_name) for o in result.failures()}


def test_a_healthy_date_passes_every_suite(checked):
    result = checked["results"][HEALTHY]
    assert result.success, result.failure_lines()
    assert {o.suite for o in result.outcomes} == set(quality.GATEWAY_SUITES) | set(
        quality.BILLING_SUITES)
    # everything was evaluable: four weeks of history and the price book are there
    assert result.not_evaluable() == []


@pytest.mark.parametrize("day,expected", [
    (LOW_VOLUME, {("gateway_volume", "volume_ratio")}),
    (HIGH_VOLUME, {("gateway_volume", "volume_ratio")}),
    (NO_FEATURE, {("gateway_attribution", "missing_feature_increase"),
                  ("gateway_schema", "vanished_fields")}),
    (UNPRICED, {("gateway_pricing", "unpriced_share_increase")}),
    (RENAMED, {("gateway_nulls", "null_rate_increase__latency_ms"),
               ("gateway_schema", "new_fields"), ("gateway_schema", "vanished_fields")}),
    (QUARANTINED, {("gateway_load", "quarantine_share")}),
    (DUPLICATED, {("gateway_load", "duplicate_share")}),
    (TOKENS_UP, {("gateway_unit_cost", "tokens_per_call_ratio")}),
    (COST_UP, {("gateway_unit_cost", "cost_per_call_ratio")}),
    # the missing vendor's half of the bill also moves billed / gateway cost
    (BILL_GAP, {("billing_coverage", "billing_vendors_missing"),
                ("billing_totals", "billing_ratio_change")}),
    (BILL_JUMP, {("billing_totals", "billing_ratio_change")}),
])
def test_each_broken_feed_trips_exactly_its_expectations(checked, day, expected):
    assert _failed(checked["results"][day]) == expected


def test_a_missing_day_fails_freshness_and_volume(checked):
    result = checked["results"][MISSING]
    assert {("gateway_freshness", "rows_loaded"), ("gateway_volume", "volume_ratio")} <= _failed(
        result)
    # nothing to compare for the shares: said, not passed
    attribution = [o for o in result.outcomes if o.suite == "gateway_attribution"]
    assert attribution and all(o.success is None for o in attribution)
    assert all(o.observed_value.startswith("not evaluable") for o in attribution)


def test_failure_lines_say_observed_expected_and_what_to_look_at(checked):
    (line,) = [ln for ln in checked["results"][RENAMED].failure_lines() if "new_fields" in ln]
    assert "new_fields = 1 (duration_ms)" in line and "expected <= 0;" in line
    assert "renamed upstream" in line
    (line,) = checked["results"][LOW_VOLUME].failure_lines()
    assert line.startswith(f"{LOW_VOLUME} gateway_volume: volume_ratio = 0.1")
    assert "expected [0.5, 2]" in line


def test_the_unpriced_share_names_the_model_to_alias_or_price(checked):
    """A platform team reading the failure must see which model nobody can price."""
    (line,) = checked["results"][UNPRICED].failure_lines()
    assert "unpriced_share_increase = 0.2 (openai/zz-inhouse-router-9 24 calls)" in line
    assert "model_aliases.csv" in line and "seed" not in line


def test_unpriced_share_matches_dbt_model_resolution(checked):
    """The check's resolution and dbt's int_model_resolution agree on every loaded pair."""
    con = duckdb.connect(checked["settings"].warehouse.removeprefix("duckdb:///"))
    try:
        dbt_rows = set(con.execute(
            "select provider_raw, model_raw, catalog_model is not null "
            "from staging.int_model_resolution").fetchall())
        assert quality.profile_duckdb(con, FIRST, LAST)
        con.execute(f"create temp table r as {quality.RESOLUTION_SQL}")
        ours = set(con.execute("select provider, model, priced from r").fetchall())
    finally:
        con.close()
    assert ours == dbt_rows
    assert ("openai", "zz-inhouse-router-9", False) in ours


def test_results_are_stored_per_date_and_replaced_on_rerun(checked):
    settings = checked["settings"]
    path = settings.warehouse.removeprefix("duckdb:///")

    def stored():
        con = duckdb.connect(path)
        try:
            return con.execute(
                "select suite, column_name, success, observed_value, min_value, max_value "
                "from raw.validation_results where load_date = ? order by all",
                [LOW_VOLUME]).fetchall()
        finally:
            con.close()

    first = stored()
    assert len(first) == len(checked["results"][LOW_VOLUME].outcomes)
    assert ("gateway_volume", "volume_ratio", False) == first[[r[1] for r in first].index(
        "volume_ratio")][:3]
    quality.check_dates(settings, [LOW_VOLUME], load_thresholds(folder=checked["base"]))
    assert stored() == first  # replaced, not appended


def test_thresholds_file_overrides_defaults_and_rejects_unknown_names(tmp_path):
    (tmp_path / "quality_thresholds.csv").write_text(
        "name,value,note\nvolume_ratio_min,0.05,our traffic is bursty\n")
    t = load_thresholds(folder=tmp_path)
    assert t["volume_ratio_min"] == 0.05 and t["volume_ratio_max"] == DEFAULTS[
        "volume_ratio_max"][0]
    assert load_thresholds(environ={"TOKENBOOK_CONFIG_DIR": str(tmp_path)})[
        "volume_ratio_min"] == 0.05
    (tmp_path / "quality_thresholds.csv").write_text("name,value\nvolume_floor,0.05\n")
    with pytest.raises(ThresholdsError, match="quality_thresholds.csv:2: unknown threshold"):
        load_thresholds(folder=tmp_path)


def test_a_looser_threshold_lets_the_low_day_pass(checked):
    t = load_thresholds(folder=checked["base"])
    t["volume_ratio_min"] = 0.05
    result = quality.check_dates(checked["settings"], [LOW_VOLUME], t)
    assert ("gateway_volume", "volume_ratio") not in _failed(result)


def test_check_command_exits_3_and_prints_what_broke(checked, monkeypatch):
    monkeypatch.setenv("TOKENBOOK_CONFIG_DIR", str(checked["base"] / "no-config"))
    wh = checked["settings"].warehouse
    out = CliRunner().invoke(app, ["check", "--date", str(NO_FEATURE), "--warehouse", wh])
    assert out.exit_code == QUALITY_FAILED, out.output
    assert "missing_feature_increase" in out.output and "release that stopped" in out.output
    ok = CliRunner().invoke(app, ["check", "--date", str(HEALTHY), "--warehouse", wh])
    assert ok.exit_code == 0, ok.output
    rng = CliRunner().invoke(app, ["check", "--from", str(HEALTHY), "--to", str(NO_FEATURE),
                                   "--warehouse", wh])
    assert rng.exit_code == QUALITY_FAILED and str(LOW_VOLUME) in rng.output


def test_gate_fails_on_zero_results(checked):
    """A date whose suites never ran (or whose results were lost) fails the gate."""
    result = quality.CheckResult(dates=[HEALTHY],
                                 suites_expected={HEALTHY: quality.GATEWAY_SUITES})
    assert not result.success
    assert any("has no results" in ln for ln in result.failure_lines())


def test_gate_refuses_results_of_an_earlier_load_of_the_date(checked):
    """A date reloaded after its check: the stored results describe data that is gone, so the
    nightly gate fails until the check runs again."""
    from tokenbook import orchestration as orch

    settings = checked["settings"]
    quality.check_dates(settings, [HEALTHY], load_thresholds(folder=checked["base"]))
    assert orch.check_quality(HEALTHY, settings)["expectations"] > 0
    ingest_gateway([str(checked["folder"] / f"calls-{HEALTHY}.jsonl")], settings, date=HEALTHY)
    with pytest.raises(orch.QualityGateFailed, match="earlier load of the date"):
        orch.check_quality(HEALTHY, settings)
    quality.check_dates(settings, [HEALTHY], load_thresholds(folder=checked["base"]))
    assert orch.check_quality(HEALTHY, settings)["expectations"] > 0


def test_an_invalid_thresholds_file_exits_4_naming_the_line(tmp_path, monkeypatch):
    from tokenbook.exitcodes import CONFIG_INVALID

    (tmp_path / "quality_thresholds.csv").write_text("name,value\nvolume_ratio_min,low\n")
    monkeypatch.setenv("TOKENBOOK_CONFIG_DIR", str(tmp_path))
    out = CliRunner().invoke(app, ["check", "--date", "2026-11-02", "--warehouse",
                                   f"duckdb:///{tmp_path / 'wh.duckdb'}"])
    assert out.exit_code == CONFIG_INVALID, out.output
    assert "quality_thresholds.csv:2: volume_ratio_min must be a number" in out.output
    usage = CliRunner().invoke(app, ["check", "--warehouse", f"duckdb:///{tmp_path / 'w'}"])
    assert usage.exit_code == 2 and "--date" in usage.output
