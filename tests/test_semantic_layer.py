"""The FinOps metrics of dbt's semantic layer (MetricFlow) agree with the marts.

On a copy of the demo warehouse that tests/test_reconciliation.py builds once per session
(seed 7: 45 days of demo traffic and the vendors' invoices, ingested and built by dbt), this
module also builds the cost marts, runs a small forecast and builds the semantic views, then asks
each metric through `mf query` (MetricFlow's own CLI, as `tokenbook metrics query` runs it) and
compares every row with the mart column that answers the same question, at two grains.
Money agrees to a millionth of a dollar (far inside the cent), shares to 1e-9.

Offline BigQuery: the semantic manifest parsed for the bigquery target validates, and
MetricFlow renders a weekly query for BigQuery with ISO (Monday) weeks.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import signal
from datetime import date
from pathlib import Path

import pytest
from test_reconciliation import demo_warehouse
from typer.testing import CliRunner
from warehouse_copy import copy_warehouse_tree

from core.settings import load_settings

MONEY = 1e-6  # USD
SHARE = 1e-9
AS_OF = date(2026, 11, 27)


@pytest.fixture(scope="module")
def sl(tmp_path_factory):
    """The demo warehouse with the cost marts, a forecast and the semantic views built, and the
    semantic manifest parsed for it where `mf` reads it."""
    from core.warehouse import parse_warehouse
    from forecasting.config import ForecastConfig
    from forecasting.job import forecast_warehouse
    from tokenbook.dbt import run_dbt
    from tokenbook.semantic import parse_semantic_manifest

    # this module builds more models and a forecast into it: its own copy of the warehouse
    # test_focus and test_reconciliation read (built once per session)
    shared = demo_warehouse(7)
    root = tmp_path_factory.mktemp("semantic") / "demo7"
    url = copy_warehouse_tree(shared.root, root, shared.url)
    wh = dataclasses.replace(shared, url=url, path=Path(url.removeprefix("duckdb:///")), root=root)
    settings = load_settings(warehouse=wh.url, dbt_target_path=str(wh.root / "dbt"),
                             config_dir=str(wh.root / "demo" / "config"))
    marts = ["mart_cost_per_outcome", "mart_cache_efficiency", "mart_budget_vs_actual",
             "mart_unattributed_spend", "mart_retry_waste"]  # fmt: skip
    # the per-row intermediate views both the marts and the semantic models read
    per_row = ["int_logical_requests", "int_retry_requests", "int_llm_calls_cache_classified"]
    # the marts (and the seeds and the organisation's configuration views they read) over the facts demo_warehouse built; their tests
    # belong to the marts' own suites
    run_dbt(["build", "--quiet", "--select", *per_row, *marts,
             *[f"+{m},resource_type:seed" for m in marts],
             *[f"+{m},path:models/org" for m in marts],
             "--exclude-resource-type", "test", "unit_test"], settings)  # fmt: skip
    # 45 days of history: shorter backtest windows than the defaults
    small = ForecastConfig(levels=("total", "feature"), metrics=("spend",), n_samples=100,
                           backtest_cutoffs=2, specs=("additive",), workers=1,
                           anomaly_lookback_days=1, min_prophet_days=14,
                           backtest_horizon_days=7, backtest_period_days=3)  # fmt: skip
    forecast_warehouse(parse_warehouse(wh.url), AS_OF, small)
    res = run_dbt(["build", "--quiet", "--select", "+int_economics_forecasts", *per_row, "semantic",
                   "--exclude-resource-type", "unit_test"], settings)  # fmt: skip
    statuses = {r.node.unique_id: str(r.status) for r in res.result.results}
    # saved queries have nothing to build (no-op)
    assert set(statuses.values()) <= {"success", "pass", "no-op"}, statuses
    assert sum(s == "success" for s in statuses.values()) >= 8, statuses
    parse_semantic_manifest(settings)
    return {"wh": wh, "settings": settings, "tmp": tmp_path_factory.mktemp("mf")}


def sql(sl, query: str) -> list[dict]:
    con = sl["wh"].connect()
    try:
        cur = con.execute(query)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


_N = iter(range(10**6))


def mf(sl, metrics: str, group_by: str, where: str | None = None) -> list[dict]:
    """`mf query --metrics M --group-by G [--where W] --csv FILE`, rows as dicts (numbers as
    floats, empty as None, metric_time as a date)."""
    from tokenbook.semantic import run_mf

    out = sl["tmp"] / f"q{next(_N)}.csv"
    args = ["query", "--metrics", metrics, "--group-by", group_by, "--csv", str(out)]
    if where:
        args += ["--where", where]
    assert run_mf(args, sl["settings"], parse=False) == 0, args
    with out.open() as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for k, v in row.items():
            if k.startswith("metric_time"):
                row[k] = date.fromisoformat(v[:10])
            elif k in metrics.split(","):
                row[k] = float(v) if v != "" else None
    return rows


def close(a, b, tol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) <= tol


def agree(mf_rows: list[dict], mart_rows: list[dict], keys: tuple[str, ...],
          pairs: dict[str, tuple[str, float]]) -> int:  # fmt: skip
    """Every mart row has the MetricFlow row with the same keys and equal values (metric ->
    (mart column, tolerance)); MetricFlow has no row the mart lacks. Returns rows compared."""
    by_key = {tuple(r[k] for k in keys): r for r in mf_rows}
    assert len(by_key) == len(mf_rows), "MetricFlow returned duplicate keys"
    mart_keys = set()
    for m in mart_rows:
        key = tuple(m[k] for k in keys)
        mart_keys.add(key)
        assert key in by_key, f"MetricFlow lacks {key}"
        for metric, (column, tol) in pairs.items():
            assert close(by_key[key][metric], m[column], tol), (
                f"{metric} at {key}: MetricFlow {by_key[key][metric]} vs mart {column} {m[column]}"
            )
    assert set(by_key) == mart_keys, f"MetricFlow only: {sorted(set(by_key) - mart_keys)[:5]}"
    return len(mart_rows)


def test_spend_outcomes_and_cost_per_outcome_equal_the_mart_by_week_and_month(sl):
    for grain in ("week", "month"):
        got = mf(sl, "list_spend,effective_spend,calls,logical_requests,outcomes,cost_per_outcome",
                 f"metric_time__{grain},feature")  # fmt: skip
        mart = sql(sl, f"""select feature, period_start as metric_time__{grain}, list_cost_usd,
                   effective_cost_usd, calls, logical_requests, outcomes, cost_per_outcome_usd
                   from marts.mart_cost_per_outcome where period = '{grain}'""")  # fmt: skip
        n = agree(got, mart, (f"metric_time__{grain}", "feature"), {
            "list_spend": ("list_cost_usd", MONEY),
            "effective_spend": ("effective_cost_usd", MONEY),
            "calls": ("calls", 0),
            "logical_requests": ("logical_requests", 0),
            "outcomes": ("outcomes", 0),
            "cost_per_outcome": ("cost_per_outcome_usd", MONEY),
        })  # fmt: skip
        assert n >= 14 and any(m["outcomes"] for m in mart)
        # weeks are ISO weeks starting Monday; months start on the 1st
        starts = {r[f"metric_time__{grain}"] for r in got}
        assert all((d.weekday() == 0) if grain == "week" else d.day == 1 for d in starts)


def test_cache_hit_rate_and_savings_equal_the_mart_per_model_and_per_week(sl):
    got = mf(sl, "cache_hit_rate,cache_savings,missed_cache_savings,could_hit_calls",
             "metric_time__week,feature,provider,model")  # fmt: skip
    mart = sql(sl, """select week_start as metric_time__week, feature, provider, model,
               cache_hit_rate, cache_savings_usd, missed_cache_savings_usd, could_hit_calls
               from marts.mart_cache_efficiency""")  # fmt: skip
    agree(got, mart, ("metric_time__week", "feature", "provider", "model"), {
        "cache_hit_rate": ("cache_hit_rate", SHARE),
        "cache_savings": ("cache_savings_usd", MONEY),
        "missed_cache_savings": ("missed_cache_savings_usd", MONEY),
        "could_hit_calls": ("could_hit_calls", 0),
    })  # fmt: skip
    assert sum(float(m["cache_savings_usd"]) for m in mart) > 0
    # the week's hit rate is re-aggregated from counts, not averaged over models
    got = mf(sl, "cache_hit_rate,cache_savings", "metric_time__week")
    mart = sql(sl, """select week_start as metric_time__week,
               sum(could_hit_calls_with_cache_read) / sum(could_hit_calls) as cache_hit_rate,
               sum(cache_savings_usd) as cache_savings_usd,
               avg(cache_hit_rate) as averaged_rate
               from marts.mart_cache_efficiency group by week_start""")  # fmt: skip
    agree(got, mart, ("metric_time__week",), {
        "cache_hit_rate": ("cache_hit_rate", SHARE),
        "cache_savings": ("cache_savings_usd", MONEY),
    })  # fmt: skip
    assert any(not close(m["cache_hit_rate"], m["averaged_rate"], 1e-3) for m in mart)


def test_unattributed_share_equals_the_mart_per_source_and_per_week(sl):
    got = mf(sl, "unattributed_share,unattributed_spend",
             "metric_time__week,call__source_format")  # fmt: skip
    mart = sql(sl, """select week_start as metric_time__week,
               source_format as call__source_format, unattributed_share_of_source_spend,
               unattributed_effective_cost_usd from marts.mart_unattributed_spend""")  # fmt: skip
    agree(got, mart, ("metric_time__week", "call__source_format"), {
        "unattributed_share": ("unattributed_share_of_source_spend", SHARE),
        "unattributed_spend": ("unattributed_effective_cost_usd", MONEY),
    })  # fmt: skip
    got = mf(sl, "unattributed_share", "metric_time__week")
    mart = sql(sl, """select week_start as metric_time__week,
               sum(unattributed_share_of_week_spend) as share
               from marts.mart_unattributed_spend group by week_start""")  # fmt: skip
    agree(got, mart, ("metric_time__week",), {"unattributed_share": ("share", SHARE)})
    assert all(0 < m["share"] < 0.2 for m in mart)


def test_retry_waste_equals_the_mart_per_model_and_per_feature(sl):
    got = mf(sl, "retry_spend,retry_spend_share",
             "metric_time__week,feature,provider,retry_request__model_family")  # fmt: skip
    mart = sql(sl, """select week_start as metric_time__week,
               coalesce(feature, '(unattributed)') as feature,
               coalesce(provider, '(unknown)') as provider,
               model as retry_request__model_family, retry_cost_usd, retry_spend_share
               from marts.mart_retry_waste""")  # fmt: skip
    agree(got, mart, ("metric_time__week", "feature", "provider", "retry_request__model_family"), {
        "retry_spend": ("retry_cost_usd", MONEY),
        "retry_spend_share": ("retry_spend_share", SHARE),
    })  # fmt: skip
    assert sum(float(m["retry_cost_usd"]) for m in mart) > 0
    got = mf(sl, "retry_spend,retry_spend_share", "metric_time__week,feature")
    mart = sql(sl, """select week_start as metric_time__week,
               coalesce(feature, '(unattributed)') as feature,
               sum(retry_cost_usd) as retry_cost_usd,
               sum(retry_cost_usd) / nullif(sum(cost_usd), 0) as retry_spend_share
               from marts.mart_retry_waste group by 1, 2""")  # fmt: skip
    agree(got, mart, ("metric_time__week", "feature"), {
        "retry_spend": ("retry_cost_usd", MONEY),
        "retry_spend_share": ("retry_spend_share", SHARE),
    })  # fmt: skip


def test_invoice_ledger_variance_equals_the_reconciliation_by_day_and_month(sl):
    for grain in ("day", "month"):
        got = mf(sl, "invoice_cost,ledger_list_cost,invoice_ledger_variance,"
                 "invoice_ledger_variance_pct",
                 f"metric_time__{grain},provider,invoice_ledger_day__model_family")  # fmt: skip
        mart = sql(sl, f"""select period_start as metric_time__{grain}, provider,
                   model as invoice_ledger_day__model_family, invoice_billed_cost_usd,
                   gateway_list_cost_usd, cost_variance_usd, cost_variance_pct
                   from marts.mart_reconciliation where grain = '{grain}'""")  # fmt: skip
        agree(got, mart, (f"metric_time__{grain}", "provider", "invoice_ledger_day__model_family"), {
            "invoice_cost": ("invoice_billed_cost_usd", MONEY),
            "ledger_list_cost": ("gateway_list_cost_usd", MONEY),
            "invoice_ledger_variance": ("cost_variance_usd", MONEY),
            "invoice_ledger_variance_pct": ("cost_variance_pct", SHARE),
        })  # fmt: skip
        assert any(abs(float(m["cost_variance_usd"])) > 0.01 for m in mart)


def test_budget_burn_equals_the_budget_mart_per_feature_line_and_per_cost_centre(sl):
    got = mf(sl, "budget_burn,monthly_budget", "metric_time__month,feature,cost_centre")
    mart = sql(sl, """select month_start as metric_time__month, feature, cost_centre,
               budget_burned_share, monthly_budget_usd from marts.mart_budget_vs_actual
               where budget_level = 'feature'""")  # fmt: skip
    agree(got, mart, ("metric_time__month", "feature", "cost_centre"), {
        "budget_burn": ("budget_burned_share", SHARE),
        "monthly_budget": ("monthly_budget_usd", MONEY),
    })  # fmt: skip
    assert any(m["budget_burned_share"] for m in mart)
    got = mf(sl, "budget_burn,monthly_budget", "metric_time__month,cost_centre")
    mart = sql(sl, """select month_start as metric_time__month, cost_centre,
               budget_burned_share, monthly_budget_usd from marts.mart_budget_vs_actual
               where budget_level = 'cost_centre'""")  # fmt: skip
    agree(got, mart, ("metric_time__month", "cost_centre"), {
        "budget_burn": ("budget_burned_share", SHARE),
        "monthly_budget": ("monthly_budget_usd", MONEY),
    })  # fmt: skip


def test_budget_burn_refuses_a_weekly_grain(sl):
    from tokenbook.semantic import run_mf

    args = ["query", "--metrics", "budget_burn", "--group-by", "metric_time__week"]
    assert run_mf(args, sl["settings"], parse=False) == 1


def test_forecast_percentiles_equal_the_latest_monthly_forecast_total_and_per_feature(sl):
    latest = """select * from marts.forecast_monthly where metric = 'spend' and as_of =
                (select max(as_of) from marts.forecast_monthly)"""
    pairs = {f"forecast_spend_{p}": (p, MONEY) for p in ("p10", "p50", "p90")}
    metrics = ",".join(pairs)
    where = "{{ Dimension('forecast_line__series_level') }} = '%s'"
    got = mf(sl, metrics, "metric_time__month", where % "total")
    mart = sql(sl, f"""select month as metric_time__month, p10, p50, p90 from ({latest}) as f
               where series_level = 'total'""")  # fmt: skip
    assert len(mart) >= 2
    agree(got, mart, ("metric_time__month",), pairs)
    assert all(m["p10"] <= m["p50"] <= m["p90"] for m in mart)
    got = mf(sl, metrics, "metric_time__month,feature", where % "feature")
    mart = sql(sl, f"""select month as metric_time__month, feature, p10, p50, p90
               from ({latest}) as f where series_level = 'feature'""")  # fmt: skip
    assert len(mart) >= 10
    agree(got, mart, ("metric_time__month", "feature"), pairs)


def test_spend_per_million_tokens_by_model_equals_the_calls_fact(sl):
    # no mart carries it: the ledger itself answers the same question
    for grain in ("week", "month"):
        got = mf(sl, "cost_per_million_tokens", f"metric_time__{grain},model")
        fact = sql(sl, f"""select date_trunc('{grain}', call_date)::date as metric_time__{grain},
                   coalesce(catalog_model, model, '(unknown)') as model,
                   sum(effective_cost_usd) * 1000000
                     / nullif(sum(case when is_priced then input_tokens + output_tokens end), 0)
                     as per_mtok
                   from marts.fct_llm_calls group by 1, 2""")  # fmt: skip
        agree(got, fact, (f"metric_time__{grain}", "model"),
              {"cost_per_million_tokens": ("per_mtok", MONEY)})  # fmt: skip
        assert len({m["model"] for m in fact if m["per_mtok"]}) >= 5


def test_mf_validate_configs_checks_every_semantic_model_on_the_warehouse(sl):
    from tokenbook.semantic import run_mf

    before = signal.getsignal(signal.SIGINT)
    assert run_mf(["validate-configs"], sl["settings"], parse=False) == 0
    # mf's own handler ("Got SIGINT", exit -1) must not outlive the call: a later Ctrl-C in
    # this process is tokenbook's (exit 130, the load rolled back)
    assert signal.getsignal(signal.SIGINT) is before


def test_tokenbook_metrics_query_runs_mf_on_the_warehouse(sl, capsys):
    from tokenbook.cli import app

    res = CliRunner().invoke(app, ["metrics", "query", "--warehouse", sl["wh"].url, "--metrics",
                                   "effective_spend", "--group-by", "metric_time__month"])  # fmt: skip
    assert res.exit_code == 0, res.output
    out = res.output + capsys.readouterr().out
    assert "metric_time__month" in out and "effective_spend" in out
    assert "2026-10-01" in out and "2026-11-01" in out
    res = CliRunner().invoke(app, ["metrics", "query", "--warehouse", sl["wh"].url, "--metrics",
                                   "cost_per_outcome", "--group-by", "customer_segment"])  # fmt: skip
    # spend is per segment, outcomes are not: MetricFlow refuses rather than guessing
    assert res.exit_code == 2
    # the README's questions as saved queries
    res = CliRunner().invoke(app, ["metrics", "query", "--warehouse", sl["wh"].url,
                                   "--saved-query", "monthly_chargeback"])  # fmt: skip
    out = res.output + capsys.readouterr().out
    assert res.exit_code == 0, out
    assert "cost_centre" in out and "customer_segment" in out


def _bigquery_manifest(bigquery_parsed: Path) -> Path:
    # parse_semantic_manifest for the bigquery target, once per session (tests/conftest.py)
    return bigquery_parsed / "semantic_manifest.json"


def test_bigquery_semantic_manifest_validates_offline(bigquery_parsed, tmp_path):
    from tokenbook.semantic import validate_semantic_manifest

    path = _bigquery_manifest(bigquery_parsed)
    assert validate_semantic_manifest(path) == []
    manifest = json.loads(path.read_text())
    calls = next(m for m in manifest["semantic_models"] if m["name"] == "llm_calls")
    assert calls["node_relation"]["schema_name"] == "tokenbook_marts"
    assert calls["node_relation"]["database"] == "orbit-finops"
    # a broken definition is caught: a metric over a measure no semantic model has
    spend = next(m for m in manifest["metrics"] if m["name"] == "effective_spend")
    spend["type_params"]["measure"]["name"] = "no_such_measure"
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(manifest))
    assert any("no_such_measure" in e for e in validate_semantic_manifest(broken))


def test_bigquery_weeks_render_as_iso_weeks(bigquery_parsed):
    """MetricFlow's BigQuery SQL for a weekly metric truncates to ISOWEEK (Monday), as DuckDB's
    date_trunc('week') does; rendered offline with MetricFlow's BigQuery renderer."""
    import sqlglot
    from metricflow.engine.metricflow_engine import MetricFlowEngine, MetricFlowQueryRequest
    from metricflow.protocols.sql_client import SqlEngine
    from metricflow.sql.render.big_query import BigQuerySqlPlanRenderer
    from metricflow_semantics.model.dbt_manifest_parser import (
        parse_manifest_from_dbt_generated_manifest,
    )
    from metricflow_semantics.model.semantic_manifest_lookup import SemanticManifestLookup

    class OfflineBigQuery:  # renders, never executes
        sql_engine_type = SqlEngine.BIGQUERY
        sql_plan_renderer = BigQuerySqlPlanRenderer()

    manifest = parse_manifest_from_dbt_generated_manifest(
        _bigquery_manifest(bigquery_parsed).read_text())
    engine = MetricFlowEngine(SemanticManifestLookup(manifest), OfflineBigQuery())
    explained = engine.explain(MetricFlowQueryRequest.create(
        metric_names=["cost_per_outcome"], group_by_names=["metric_time__week", "feature"]))  # fmt: skip
    text = explained.sql_statement.sql
    assert "isoweek" in text.lower()
    assert "orbit-finops.tokenbook_marts.fct_llm_calls" in text.replace("`", "")
    sqlglot.parse_one(text, read="bigquery")


def test_metrics_query_on_a_missing_warehouse_says_what_to_do(tmp_path):
    from tokenbook.cli import app

    missing = tmp_path / "nowhere" / "finops.duckdb"
    res = CliRunner().invoke(app, ["metrics", "query", "--warehouse", f"duckdb:///{missing}",
                                   "--metrics", "effective_spend"])  # fmt: skip
    assert res.exit_code == 1
    assert "no warehouse at" in res.output and "tokenbook run --demo" in res.output
    assert not missing.exists()

