"""`tokenbook check` on an organisation whose healthy week is not flat: a freight broker whose
gateway is quiet at weekends and whose Anthropic traffic (so its Anthropic bill) stops on
Saturdays and Sundays. Loaded by the real CLI (gateway logs, OpenAI costs API pages, Anthropic
cost reports), checked with the real suites: a healthy weekend passes, a weekday bill that did
not arrive still fails, naming the vendor.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta

import pytest
from typer.testing import CliRunner

from core.settings import load_settings
from ingestion import quality
from ingestion.quality_thresholds import load_thresholds
from tokenbook.cli import app

FIRST = date(2026, 9, 7)  # a Monday; five weeks of history
LAST = date(2026, 10, 18)  # a Sunday
OPENAI_GAP = date(2026, 10, 14)  # a Wednesday: the OpenAI costs pull failed
WEEKEND = (date(2026, 10, 17), date(2026, 10, 18))
WEEKDAY_MODELS = (("openai", "gpt-4.1-mini"), ("anthropic", "claude-haiku-4-5"))
WEEKEND_MODELS = (("openai", "gpt-4.1-mini"),)


def _calls(day: date, rng: random.Random) -> list[dict]:
    weekday = day.weekday() < 5
    models = WEEKDAY_MODELS if weekday else WEEKEND_MODELS
    out = []
    for i in range(160 if weekday else 16):
        provider, model = models[i % len(models)]
        out.append({
            "request_id": f"frt-{day:%Y%m%d}-{i}",
            "timestamp": datetime(day.year, day.month, day.day, i % 24, i % 60).isoformat() + "Z",
            "provider": provider, "model": model,
            "input_tokens": rng.randint(1500, 2500), "output_tokens": rng.randint(100, 300),
            "feature": ("lane_pricer", "pod_reader")[i % 2],
            "customer_segment": ("carrier", "shipper")[i % 2], "team": "brokerage-ai",
            "latency_ms": rng.randint(300, 1500), "status": "ok",
            "cost_usd": round(0.002 * rng.uniform(0.9, 1.1), 6),
        })
    return out


def _openai_costs(day: date, amount: float) -> dict:
    start = int((datetime(day.year, day.month, day.day) - datetime(1970, 1, 1)).total_seconds())
    return {"object": "page", "has_more": False, "next_page": None, "data": [{
        "object": "bucket", "start_time": start, "end_time": start + 86400, "results": [{
            "object": "organization.costs.result",
            "amount": {"value": amount, "currency": "usd"},
            "line_item": "gpt-4.1-mini-2025-04-14, input", "project_id": "proj_brokerage",
            "api_key_id": None, "quantity": None, "quantity_unit": None}]}]}


def _anthropic_costs(day: date, amount: float) -> dict:
    return {"has_more": False, "next_page": None, "data": [{
        "starting_at": f"{day}T00:00:00Z", "ending_at": f"{day + timedelta(days=1)}T00:00:00Z",
        "results": [{"currency": "USD", "amount": f"{amount * 100:.2f}",
                     "workspace_id": "wrkspc_brokerage",
                     "description": "Claude Haiku 4.5 Usage - Input Tokens",
                     "cost_type": "tokens", "context_window": "0-200k",
                     "model": "claude-haiku-4-5-20251001", "service_tier": "standard",
                     "token_type": "uncached_input_tokens"}]}]}


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    base = tmp_path_factory.mktemp("broker")
    gw, oa, an = base / "gw", base / "openai", base / "anthropic"
    for folder in (gw, oa, an):
        folder.mkdir()
    rng = random.Random(23)
    day = FIRST
    while day <= LAST:
        calls = _calls(day, rng)
        (gw / f"brokerage-{day}.jsonl").write_text("\n".join(map(json.dumps, calls)) + "\n")
        cost = {p: sum(c["cost_usd"] for c in calls if c["provider"] == p)
                for p in ("openai", "anthropic")}
        if day != OPENAI_GAP:
            (oa / f"costs-{day}.json").write_text(
                json.dumps(_openai_costs(day, round(cost["openai"] * 1.04, 5))))
        if cost["anthropic"]:  # no Anthropic call, no Anthropic line: weekends
            (an / f"cost-report-{day}.json").write_text(
                json.dumps(_anthropic_costs(day, round(cost["anthropic"] * 1.04, 5))))
        day += timedelta(days=1)
    wh = f"duckdb:///{base / 'wh.duckdb'}"
    runner = CliRunner()
    for args in (["ingest", "gateway", str(gw)],
                 ["ingest", "billing", "--vendor", "openai", str(oa)],
                 ["ingest", "billing", "--vendor", "anthropic", str(an)]):
        out = runner.invoke(app, [*args, "--warehouse", wh])
        assert out.exit_code == 0, out.output
    settings = load_settings(warehouse=wh)
    result = quality.check_dates(settings, [date(2026, 10, 12) + timedelta(days=k)
                                            for k in range(7)],
                                 load_thresholds(folder=base / "no-config"))
    result.settings = settings
    return result


def _failed(result, day: date) -> dict[str, str | None]:
    return {o.column_name: o.observed_value for o in result.failures() if o.load_date == day}


def test_a_weekend_without_the_weekday_vendor_passes_billing_coverage(broker):
    for day in WEEKEND:
        assert "billing_vendors_missing" not in _failed(broker, day), broker.failure_lines()
        assert _failed(broker, day) == {}, broker.failure_lines()


def test_a_weekday_bill_that_did_not_arrive_still_fails_naming_the_vendor(broker):
    failed = _failed(broker, OPENAI_GAP)
    assert "openai" in (failed.get("billing_vendors_missing") or ""), broker.failure_lines()
    assert "billing_ratio_change" in failed
    healthy = [date(2026, 10, 12), date(2026, 10, 13), date(2026, 10, 15), date(2026, 10, 16)]
    assert all(_failed(broker, d) == {} for d in healthy), broker.failure_lines()


def test_the_gate_fails_when_the_billing_suites_of_a_billed_date_have_no_result(broker):
    """The models of a date with bills must not build on a check that never looked at them
    (the results were lost, or the check ran before the bills were loaded)."""
    import duckdb

    from tokenbook import orchestration as orch

    healthy = date(2026, 10, 13)
    assert orch.check_quality(healthy, broker.settings)["expectations"] > 0
    path = broker.settings.warehouse.removeprefix("duckdb:///")
    con = duckdb.connect(path)
    con.execute("delete from raw.validation_results where load_date = ? "
                "and suite like 'billing_%'", [healthy])
    con.close()
    with pytest.raises(orch.QualityGateFailed, match="billing_coverage"):
        orch.check_quality(healthy, broker.settings)


# A second organisation: a search start-up whose weekend traffic is another workload (a
# re-indexing batch on a small model: long prompts, cheap calls, no customer segment).
REINDEX_FIRST = date(2026, 9, 7)  # a Monday; five full weeks, then the checked week
CHECKED_WEEK = [date(2026, 10, 12) + timedelta(days=k) for k in range(7)]
LONG_PROMPTS = date(2026, 10, 15)  # a Thursday whose prompts are four times as long


def _reindex_calls(day: date, rng: random.Random) -> list[dict]:
    weekend = day.weekday() >= 5
    out = []
    for i in range(50 if weekend else 240):
        tokens = 4 if weekend or day == LONG_PROMPTS else 1
        rec = {
            "request_id": f"srch-{day:%Y%m%d}-{i}",
            "timestamp": datetime(day.year, day.month, day.day, i % 24, i % 60).isoformat() + "Z",
            "provider": "openai", "model": "gpt-4.1-nano" if weekend else "gpt-4.1",
            "input_tokens": rng.randint(1500, 2500) * tokens,
            "output_tokens": rng.randint(100, 300) * tokens,
            "feature": "reindexer" if weekend else ("query_rewriter", "answer_card")[i % 2],
            "team": "relevance", "latency_ms": rng.randint(300, 1500), "status": "ok",
            "cost_usd": round((0.0006 if weekend else 0.01) * rng.uniform(0.9, 1.1), 6),
        }
        if not weekend:
            rec["customer_segment"] = ("self_serve", "enterprise")[i % 2]
        out.append(rec)
    return out


@pytest.fixture(scope="module")
def reindexer(tmp_path_factory):
    base = tmp_path_factory.mktemp("reindexer")
    gw = base / "gw"
    gw.mkdir()
    rng = random.Random(31)
    day = REINDEX_FIRST
    while day <= CHECKED_WEEK[-1]:
        calls = _reindex_calls(day, rng)
        (gw / f"search-{day}.jsonl").write_text("\n".join(map(json.dumps, calls)) + "\n")
        day += timedelta(days=1)
    wh = f"duckdb:///{base / 'wh.duckdb'}"
    out = CliRunner().invoke(app, ["ingest", "gateway", str(gw), "--warehouse", wh])
    assert out.exit_code == 0, out.output
    thresholds = load_thresholds(folder=base / "no-config")
    return quality.check_dates(load_settings(warehouse=wh), CHECKED_WEEK, thresholds)


def test_a_weekend_workload_is_compared_with_the_weekends_before(reindexer):
    """Every weekend of the history had the batch's shape: the weekend is healthy, not a
    missing segment, a vanished field and a 4x prompt every Saturday and Sunday forever."""
    for day in CHECKED_WEEK[5:]:
        assert _failed(reindexer, day) == {}, reindexer.failure_lines()


def test_a_weekday_that_changes_shape_still_fails(reindexer):
    assert set(_failed(reindexer, LONG_PROMPTS)) == {"tokens_per_call_ratio"}, \
        reindexer.failure_lines()
    for day in CHECKED_WEEK[:5]:
        if day != LONG_PROMPTS:
            assert _failed(reindexer, day) == {}, reindexer.failure_lines()


def test_a_first_week_passes_and_says_how_much_history_each_comparison_lacks(tmp_path):
    """A new organisation's fourth and fifth days: nothing fails, and each skipped comparison
    says what it lacks (the same weekday's days for the volume, days of history for the
    rest), not a generic 'too little history, or no call'."""
    gw = tmp_path / "gw"
    gw.mkdir()
    rng = random.Random(5)
    first = date(2026, 9, 14)
    for k in range(5):
        day = first + timedelta(days=k)
        calls = _reindex_calls(day, rng)
        (gw / f"search-{day}.jsonl").write_text("\n".join(map(json.dumps, calls)) + "\n")
    wh = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    assert CliRunner().invoke(app, ["ingest", "gateway", str(gw), "--warehouse", wh]
                              ).exit_code == 0
    result = quality.check_dates(load_settings(warehouse=wh),
                                 [first + timedelta(days=1), first + timedelta(days=4)],
                                 load_thresholds(folder=tmp_path / "no-config"))
    assert result.success, result.failure_lines()
    said = {(o.load_date, o.column_name): o.observed_value for o in result.not_evaluable()}
    assert said[(first + timedelta(days=4), "volume_ratio")] == (
        "not evaluable: 0 days of the same weekday in the 28 days before (2 needed)")
    assert said[(first + timedelta(days=1), "tokens_per_call_ratio")] == (
        "not evaluable: 1 comparable day in the 28 days before (2 needed)")
    assert (first + timedelta(days=4), "tokens_per_call_ratio") not in said


def test_a_business_closed_at_weekends_is_not_missing_its_weekends(tmp_path):
    """A business-to-business organisation with no call on Saturdays and Sundays, ever: its
    weekend is not a delivery that never arrived (not evaluable, saying why), while a weekday
    without a delivery still fails freshness."""
    gw = tmp_path / "gw"
    gw.mkdir()
    rng = random.Random(41)
    missing_wednesday = date(2026, 10, 14)
    day = FIRST
    while day <= LAST:
        if day.weekday() < 5 and day != missing_wednesday:
            calls = _calls(day, rng)
            (gw / f"b2b-{day}.jsonl").write_text("\n".join(map(json.dumps, calls)) + "\n")
        day += timedelta(days=1)
    wh = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    assert CliRunner().invoke(app, ["ingest", "gateway", str(gw), "--warehouse", wh]
                              ).exit_code == 0
    result = quality.check_dates(load_settings(warehouse=wh),
                                 [date(2026, 10, 12) + timedelta(days=k) for k in range(7)],
                                 load_thresholds(folder=tmp_path / "no-config"))
    failed = {(o.load_date, o.column_name) for o in result.failures()}
    assert (missing_wednesday, "rows_loaded") in failed
    assert not {f for f in failed if f[0] in WEEKEND}, result.failure_lines()
    said = {(o.load_date, o.column_name): o.observed_value for o in result.not_evaluable()}
    assert "no load on this weekday in any of the 3 weeks before" in said[(WEEKEND[0],
                                                                          "rows_loaded")]
