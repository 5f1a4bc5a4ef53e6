"""The first levers (routing, eval before switch, prompt drift, retry amplification) and the
evals loader, built for real: a small demo organisation (60 days, scale 0.03) goes through the
gateway pipeline, the evals loader and `dbt build` on DuckDB for two seeds, and each mart's top
finding must be the event the demo planted (feature and date / week), wherever the seed put it.

Seeds 2 and 10 move every event to another feature, date and provider. (Some seeds, e.g. 1 and
7 at this scale, write a day file whose first line is a planted `not_object` bad line: the
gateway reader then takes the whole file for a JSON array and fails the file. That is a
gateway-reader issue, reported to its owner, not a lever one.)

Routing's rule (latest eval passed and reached the feature's own bar) is also proved on an
organisation of the test's own, with its own configuration folder and names that are not the
demo's.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from ingestion.evals import EvalsFileError, ingest_evals

END = date(2026, 11, 27)
DAYS = 60
SCALE = 0.03
SEEDS = (2, 10)
LEVER_MARTS = (
    "mart_routing_opportunities",
    "mart_model_switches",
    "mart_prompt_drift",
    "mart_retry_waste",
)


def _week(d: date) -> date:
    return d - timedelta(days=d.weekday())


# ---------------------------------------------------------------------------------------------
# evals loader


HEADER = "eval_date,feature,provider,model,eval_name,score,passed,quality_bar,cases\n"


def _connect(path: Path):
    import duckdb

    return duckdb.connect(str(path))


def _tables(con) -> dict:
    return {
        "evals": con.execute("select * exclude (load_date) from raw.evals order by all").fetchall(),
        "quarantine": con.execute(
            "select * from raw.quarantine where source = 'evals' order by all"
        ).fetchall(),
    }


def test_evals_loader_counts_quarantines_and_reloads_identically(tmp_path):
    good = tmp_path / "evals.csv"
    good.write_text(
        HEADER
        + "2026-01-01,invoice_triage,openai,gpt-4o-mini,golden,0.85,true,0.80,200\n"
        + "2026-01-02,invoice_triage,OpenAI,GPT-4o-mini,golden,1.40,maybe,0.80,x\n"  # 3 faults
        + "2026-01-01,invoice_triage,openai,gpt-4o-mini,golden,0.83,true,0.80,210\n"  # same key
        + ",invoice_triage,openai,,golden,0.7,false,,\n"  # no date, no model
        + "2026-01-03,lead_scoring,anthropic,claude-haiku-4-5,golden,0.90,true,,\n"
    )
    lines = tmp_path / "more.jsonl"
    lines.write_text(
        '{"eval_date": "2026-01-04", "feature": "policy_qa", "provider": "vertex_ai", '
        '"model": "gemini-2.5-flash-lite", "eval_name": "golden", "score": 0.8, '
        '"passed": true, "cases": 300}\n'
        "not json at all\n"
        "[1, 2]\n"
    )
    con = _connect(tmp_path / "wh.duckdb")
    first = ingest_evals(con, [good, lines])
    assert first.load_date == date(2026, 1, 4)  # the latest valid eval date, never the clock
    by_file = {Path(f.source_file).name: f for f in first.files}
    assert (by_file["evals.csv"].rows_read, by_file["evals.csv"].rows_loaded) == (5, 2)
    assert (by_file["evals.csv"].rows_quarantined, by_file["evals.csv"].rows_duplicate) == (2, 1)
    assert (by_file["more.jsonl"].rows_loaded, by_file["more.jsonl"].rows_quarantined) == (1, 2)
    for f in first.files:
        assert f.rows_read == f.rows_loaded + f.rows_quarantined + f.rows_duplicate
    kept = con.execute(
        "select score, cases, provider, model from raw.evals where feature = 'invoice_triage'"
    ).fetchall()
    assert kept == [(0.83, 210, "openai", "gpt-4o-mini")]  # the later line restates the key
    reasons = dict(
        con.execute(
            "select line_number, reason from raw.quarantine where source_file like '%evals.csv'"
        ).fetchall()
    )
    assert reasons[3] == (
        "score outside 0..1; unparseable passed; cases not a non-negative integer"
    )
    assert reasons[5] == "missing eval_date; missing model"
    jsonl_reasons = con.execute(
        "select reason from raw.quarantine where source_file like '%more.jsonl' order by 1"
    ).fetchall()
    assert jsonl_reasons == [("not JSON",), ("not a JSON object",)]

    before = _tables(con)
    ingest_evals(con, [good, lines])  # a rerun replaces what the files bring
    assert _tables(con) == before
    audit = con.execute(
        "select count(*), sum(rows_read) from raw.load_audit where source = 'evals'"
    ).fetchone()
    assert audit == (4, 16)  # one row per file per run, append-only


def test_evals_loader_refuses_a_file_without_a_required_column(tmp_path):
    bad = tmp_path / "no_score.csv"
    bad.write_text("eval_date,feature,provider,model,eval_name,passed\n2026-01-01,f,p,m,e,true\n")
    con = _connect(tmp_path / "wh.duckdb")
    with pytest.raises(EvalsFileError, match=r"no_score\.csv has no column 'score'"):
        ingest_evals(con, [bad])
    with pytest.raises(EvalsFileError, match="file not found"):
        ingest_evals(con, [tmp_path / "missing.csv"])


def test_ingest_evals_command(tmp_path):
    import typer
    from typer.testing import CliRunner

    from tokenbook.commands.ingest_evals import evals

    app = typer.Typer()
    app.command()(evals)
    f = tmp_path / "e.csv"
    f.write_text(HEADER + "2026-02-01,f,openai,gpt-4o,golden,0.9,true,0.8,10\nbad,f,,,,,,,\n")
    wh = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    result = CliRunner().invoke(app, [str(f), "--warehouse", wh])
    assert result.exit_code == 0, result.output
    assert "2 lines read, 1 loaded, 1 quarantined, 0 duplicates" in result.output
    result = CliRunner().invoke(app, [str(tmp_path / "nope.csv"), "--warehouse", wh])
    assert result.exit_code == 1
    assert "file not found" in result.output


def test_staging_is_empty_not_broken_before_the_first_evals_load(tmp_path):
    """Issue 14 chose one way for a raw table nothing was loaded into yet: tokenbook creates it
    empty, from the loader's schema, before dbt runs (the model no longer branches on it)."""
    from core.settings import load_settings
    from tokenbook.dbt import run_dbt

    settings = load_settings(warehouse=f"duckdb:///{tmp_path / 'wh.duckdb'}")
    run_dbt(["build", "--select", "stg_evals__results"], settings, target_path=tmp_path)
    con = _connect(tmp_path / "wh.duckdb")
    assert con.execute("select count(*) from staging.stg_evals__results").fetchone() == (0,)
    assert con.execute("select count(*) from raw.evals").fetchone() == (0,)


# ---------------------------------------------------------------------------------------------
# routing on an organisation that is not the demo: its own features.csv sets each bar

ROUTING_FEATURES = (
    "feature,unit_of_work,quality_bar\n"
    "invoice_triage,invoice,0.85\n"
    "lead_scoring,lead,0.70\n"
)
# feature -> (provider, model) it runs on now; kb_lookup has no row in features.csv
ROUTING_TRAFFIC = {
    "invoice_triage": ("openai", "gpt-4.1"),
    "lead_scoring": ("anthropic", "claude-sonnet-4-5"),
    "kb_lookup": ("openai", "gpt-4.1"),
}
ROUTING_EVALS = (
    # the same score passes lead_scoring's bar (0.70) and not invoice_triage's (0.85)
    "2026-11-05,invoice_triage,openai,gpt-4.1-nano,triage-golden,0.80,true,,150\n"
    "2026-11-05,lead_scoring,openai,gpt-4.1-nano,leads-golden,0.80,true,,150\n"
    "2026-11-05,invoice_triage,openai,gpt-4o-mini,triage-golden,0.90,true,,150\n"
    "2026-11-05,lead_scoring,openai,gpt-4o-mini,leads-golden,0.90,true,,150\n"
    # passed first, failed on the later run: the latest eval decides
    "2026-11-03,invoice_triage,vertex_ai,gemini-2.5-flash-lite,triage-golden,0.95,true,,150\n"
    "2026-11-08,invoice_triage,vertex_ai,gemini-2.5-flash-lite,triage-golden,0.60,false,,150\n"
    # a feature the organisation gave no bar: no model can pass it
    "2026-11-05,kb_lookup,openai,gpt-4.1-nano,kb-golden,0.99,true,,150\n"
)


def test_routing_recommends_per_the_organisations_own_bars(tmp_path):
    """Through the gateway loader, the evals loader and `dbt build` with a configuration
    folder: the cheapest model is recommended only where its latest eval passed AND reached the
    bar the organisation set for that feature in features.csv."""
    from core.settings import load_settings
    from core.warehouse import connect_duckdb, parse_warehouse
    from ingestion.gateway.pipeline import ingest_gateway
    from tokenbook.dbt import run_dbt

    config = tmp_path / "config"
    config.mkdir()
    (config / "features.csv").write_text(ROUTING_FEATURES)
    logs = tmp_path / "gateway.jsonl"
    lines = []
    for day in range(1, 11):
        for feature, (provider, model) in ROUTING_TRAFFIC.items():
            for i in range(5):
                rid = f"{feature}-{day:02d}-{i}"
                lines.append(json.dumps({
                    "request_id": rid, "trace_id": rid, "attempt": 1,
                    "timestamp": f"2026-11-{day:02d}T{9 + i:02d}:00:00Z",
                    "provider": provider, "model": model,
                    "input_tokens": 3000, "output_tokens": 400,
                    "feature": feature, "customer_segment": "partners", "status": "ok",
                    "outcome": "success", "quality_score": 0.9,
                }))
    logs.write_text("\n".join(lines) + "\n")
    evals = tmp_path / "evals.csv"
    evals.write_text(HEADER + ROUTING_EVALS)
    settings = load_settings(warehouse=f"duckdb:///{tmp_path / 'wh.duckdb'}",
                             config_dir=str(config))
    ingest_gateway([str(logs)], settings)
    con = connect_duckdb(parse_warehouse(settings.warehouse))
    try:
        ingest_evals(con, [evals])
    finally:
        con.close()
    run_dbt(["build", "--select", "+mart_routing_opportunities", "--indirect-selection",
             "cautious"], settings, target_path=tmp_path / "dbt")
    con = connect_duckdb(parse_warehouse(settings.warehouse))
    try:
        rows = {r["feature"]: r for r in _rows(
            con, "select * from marts.mart_routing_opportunities")}
    finally:
        con.close()
    assert set(rows) == set(ROUTING_TRAFFIC)
    # gpt-4.1-nano and gemini-2.5-flash-lite are cheaper than gpt-4o-mini, but nano is below
    # this feature's bar and flash-lite failed its latest eval
    triage = rows["invoice_triage"]
    assert (triage["quality_bar"], triage["cheapest_passing_model"]) == (0.85, "gpt-4o-mini")
    assert triage["has_opportunity"] and triage["monthly_saving_usd"] > 0
    leads = rows["lead_scoring"]
    assert (leads["quality_bar"], leads["cheapest_passing_model"]) == (0.70, "gpt-4.1-nano")
    assert leads["candidate_list_cost_usd"] < triage["candidate_list_cost_usd"]
    kb = rows["kb_lookup"]
    assert kb["quality_bar"] is None and kb["cheapest_passing_model"] is None
    assert not kb["has_opportunity"] and kb["monthly_saving_usd"] == 0


# ---------------------------------------------------------------------------------------------
# the demo through the real pipeline, two seeds


@pytest.fixture(scope="module", params=SEEDS, ids=lambda s: f"seed{s}")
def demo_marts(request, tmp_path_factory):
    from core.settings import load_settings
    from core.warehouse import connect_duckdb, parse_warehouse
    from ingestion.gateway.pipeline import ingest_gateway
    from tokenbook.dbt import run_dbt
    from tokenbook.demo import generate

    seed = request.param
    base = tmp_path_factory.mktemp(f"levers_seed{seed}")
    manifest = generate(base / "demo", days=DAYS, end=END, seed=seed, scale=SCALE)
    settings = load_settings(warehouse=f"duckdb:///{base / 'wh.duckdb'}",
                             config_dir=str(base / "demo" / "config"))
    files = sorted(str(p) for p in (base / "demo" / "gateway").glob("gateway-*.jsonl.gz"))
    ingest_gateway(files, settings)
    con = connect_duckdb(parse_warehouse(settings.warehouse))
    try:
        ingest_evals(con, [base / "demo" / "evals" / "evals.csv"])
    finally:
        con.close()
    select = [f"+{m}" for m in LEVER_MARTS]
    run_dbt(
        ["build", "--select", *select, "--indirect-selection", "cautious"],
        settings,
        target_path=base / "dbt",
    )
    con = connect_duckdb(parse_warehouse(settings.warehouse))
    evals_rows = list(csv.DictReader((base / "demo" / "evals" / "evals.csv").open()))
    yield {"seed": seed, "manifest": manifest, "con": con, "evals": evals_rows}
    con.close()


def _rows(con, sql: str) -> list[dict]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def test_routing_recommends_only_models_that_passed_the_bar(demo_marts):
    """The demo's outcome: the passing cheaper candidate it planted is recommended and the model
    it switched to without an eval never is. Each feature's bar is read from the demo's own
    configuration, not restated here; the bars' rule itself is proved on an organisation that is
    not the demo by test_routing_recommends_per_the_organisations_own_bars."""
    from tokenbook.demo.orgconfig import FILES

    con, manifest = demo_marts["con"], demo_marts["manifest"]
    bars = {r["feature"]: float(r["quality_bar"])
            for r in csv.DictReader(io.StringIO(FILES["features"]))}
    latest: dict[tuple[str, str], dict] = {}
    for r in sorted(demo_marts["evals"], key=lambda r: r["eval_date"]):
        latest[(r["feature"], r["model"])] = r
    passing = {
        k for k, r in latest.items() if r["passed"] == "true" and float(r["score"]) >= bars[k[0]]
    }
    rows = _rows(
        con, "select * from marts.mart_routing_opportunities order by monthly_saving_usd desc"
    )
    assert {r["feature"] for r in rows} >= set(bars)
    recommended = [r for r in rows if r["cheapest_passing_model"] is not None]
    assert recommended
    for r in recommended:
        assert (r["feature"], r["cheapest_passing_model"]) in passing, r
    sw = manifest["events"]["model_switch"]
    assert all(
        not (r["feature"] == sw["feature"] and r["cheapest_passing_model"] == sw["to_model"])
        for r in rows
    ), "the switch's new model failed its eval: never a routing target"
    top = rows[0]
    assert top["monthly_saving_usd"] > 0 and top["has_opportunity"]
    assert top["candidate_list_cost_usd"] < top["list_cost_usd"]
    # a cheaper candidate planted as passing is found for its feature
    planted = {(c["feature"], c["model"]) for c in manifest["evals"]["passing_cheaper_candidates"]}
    found = {(r["feature"], r["cheapest_passing_model"]) for r in recommended}
    assert planted & found
    assert all(0 <= r["reflex_spend_share"] <= 1 for r in rows)


def test_model_switch_without_eval_is_the_top_flag(demo_marts):
    con, sw = demo_marts["con"], demo_marts["manifest"]["events"]["model_switch"]
    flagged = _rows(
        con,
        "select * from marts.mart_model_switches where is_flagged "
        "order by monthly_spend_on_new_model_usd desc",
    )
    assert flagged, "the planted switch was not found"
    top = flagged[0]
    planted = date.fromisoformat(sw["date"])
    assert top["feature"] == sw["feature"]
    assert top["to_model"] == sw["to_model"]
    assert abs((top["switch_date"] - planted).days) <= 1
    assert top["switch_week"] in (_week(planted), _week(planted) + timedelta(days=7))
    assert top["had_passing_eval"] is False
    assert top["quality_change"] < 0
    assert top["monthly_spend_on_new_model_usd"] > 0


def test_prompt_growth_is_the_top_drift(demo_marts):
    con, pg = demo_marts["con"], demo_marts["manifest"]["events"]["prompt_growth"]
    latest = _rows(
        con,
        "select * from marts.mart_prompt_drift where is_latest_week and is_flagged "
        "order by monthly_added_cost_usd desc",
    )
    assert latest, "no drift flagged in the latest week"
    top = latest[0]
    assert (top["feature"], top["prompt_template_id"]) == (pg["feature"], pg["template"])
    assert top["growth_multiple"] >= 1.5
    assert abs(top["growth_multiple"] - pg["end_multiple"]) < 0.6
    assert top["monthly_added_cost_usd"] > 0
    first_flag = con.execute(
        "select min(call_week) from marts.mart_prompt_drift where is_flagged "
        "and feature = ? and prompt_template_id = ?",
        [pg["feature"], pg["template"]],
    ).fetchone()[0]
    assert first_flag > _week(date.fromisoformat(pg["start_date"]))


def test_degraded_day_is_the_top_retry_waste(demo_marts):
    con, dd = demo_marts["con"], demo_marts["manifest"]["events"]["degraded_day"]
    rows = _rows(
        con,
        "select * from marts.mart_retry_waste where degraded_days > 0 "
        "order by degraded_extra_cost_usd desc",
    )
    assert rows
    top = rows[0]
    assert top["provider"] == dd["provider"]
    assert top["worst_degraded_date"] == date.fromisoformat(dd["date"])
    assert top["week_start"] == _week(date.fromisoformat(dd["date"]))
    assert top["degraded_cost_multiplier"] > 1
    assert top["degraded_extra_cost_usd"] > 0
    # every attempt of the fact is counted once
    totals = con.execute(
        "select sum(attempts), sum(logical_requests) from marts.mart_retry_waste"
    ).fetchone()
    fact = con.execute(
        "select count(*), count(distinct trace_id) from marts.fct_llm_calls"
    ).fetchone()
    assert totals == fact


# ---------------------------------------------------------------------------------------------
# BigQuery: the lever models compile offline and parse as BigQuery SQL


def test_lever_models_compile_for_bigquery(bigquery_compiled):
    import sqlglot

    # the project compiled for BigQuery offline, once per session (tests/conftest.py)
    manifest = json.loads(bigquery_compiled.read_text())
    for name in (*LEVER_MARTS, "stg_evals__results"):
        sql = manifest["nodes"][f"model.tokenbook.{name}"]["compiled_code"]
        assert "date_trunc(" not in sql or "isoweek" in sql
        sqlglot.parse_one(sql, read="bigquery")
