"""The cost marts, built for real by dbt on a small DuckDB warehouse.

The raw table is created from the ingestion contract (ingestion/gateway/schema.py) and
filled with a few hundred generated call attempts plus a handful of hand-written ones whose
costs are worked out by hand from the default price book (openai gpt-4o: 2.50 USD per
million input tokens, 1.25 per million cache-read tokens, 10.00 per million output tokens).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from warehouse_copy import copy_warehouse_tree

from core.settings import load_settings
from core.warehouse import connect_duckdb, parse_warehouse
from ingestion.gateway.schema import GATEWAY_CALLS_COLUMNS
from ingestion.raw.schema import duckdb_ddl
from tokenbook.dbt import run_dbt

MARTS = (
    "mart_cost_per_outcome",
    "mart_cache_efficiency",
    "mart_chargeback",
    "mart_chargeback_customer",
    "mart_budget_vs_actual",
    "mart_unattributed_spend",
)
SEEDS = ("features", "teams")
# the per-call / per-request classifications two of the marts sum (tests and unit tests with them)
PER_ROW = ("int_llm_calls_cache_classified", "int_logical_requests")

# 360 generated attempts: pairs (attempt 1 then 2) of one trace, 2025-12-20 .. 2026-02-17,
# five features plus untagged calls, untagged segments, an unpriced model, Azure calls
# (15% negotiated discount in the organisation's configuration) and three source formats.
GENERATED_CALLS = """
insert into raw.gateway_calls by name
select
    cast(date '2025-12-20' + cast((i // 2) % 60 as integer) as date) + interval 1 day as load_date,
    'gen-' || i as request_id,
    'trace-' || (i // 2) as trace_id,
    1 + i % 2 as attempt,
    cast(date '2025-12-20' + cast((i // 2) % 60 as integer) as timestamp)
        + to_hours((i // 2) % 24) + to_minutes(i % 2) as call_ts,
    case when i // 2 % 4 = 3 then 'azure_openai' else 'openai' end as provider,
    case when i // 2 % 13 = 0 then 'mystery-model-x'
         when i // 2 % 4 = 3 then 'gpt-4o' else 'gpt-4o-mini' end as model,
    1000 + 10 * (i % 17) as input_tokens,
    100 + (i % 23) as output_tokens,
    case when i % 4 = 0 then 200 else 0 end as cache_read_input_tokens,
    0 as cache_write_input_tokens,
    'ok' as status,
    case when i % 2 = 0 then null
         when (i // 2) % 3 = 0 then 'failure' else 'success' end as outcome,
    case (i // 2) % 6
        when 0 then 'claims_triage' when 1 then 'policy_digest' when 2 then 'pr_linter'
        when 3 then 'kb_lookup' when 4 then 'outreach_writer' else null end as feature,
    case when (i // 2) % 11 = 0 then null
         else ['enterprise', 'mid_market', 'smb', 'free_tier'][1 + (i // 2) % 4] end
        as customer_segment,
    'cust-' || ((i // 2) % 7) as customer_id,
    'prod' as environment,
    'hash-' || (i % 5) as prompt_prefix_hash,
    case when (i // 2) % 6 = 5 then 'litellm' when (i // 2) % 10 = 7 then 'otel'
         else 'native' end as source_format,
    'generated.jsonl' as source_file,
    i as source_line
from range(0, 360) as r(i)
"""

# Hand-worked cases in the ISO week starting Monday 2026-02-09 (openai gpt-4o).
# lease_parser: trace X took 3 attempts (two failed outcomes, then success), each 1000
# input + 100 output tokens = 0.0025 + 0.0010 = 0.0035 USD; trace Y: 2000 input tokens =
# 0.0050 USD, success. 4 calls, 2 logical requests, 2 outcomes, 0.0155 USD:
# cost per call 0.003875, cost per outcome 0.00775 (budget 0.40 -> under; value 12.00).
# call_recap: three calls with the same prefix hash; the first cannot hit, the second reads
# 600 tokens from the cache, the third reads none. Saved 600 x (2.50 - 1.25) / 1e6 =
# 0.00075 USD; still to save: the prefix is 600 tokens (the most ever read) -> 0.00075 USD.
HAND_CALLS = """
insert into raw.gateway_calls by name
select * from (values
    (date '2026-02-12', 'x-1', 'X', 1, timestamp '2026-02-11 09:00:00', 'openai', 'gpt-4o',
     1000, 100, 0, 'failure', 'lease_parser', 'enterprise', 'native', 1, 'hx'),
    (date '2026-02-12', 'x-2', 'X', 2, timestamp '2026-02-11 09:00:20', 'openai', 'gpt-4o',
     1000, 100, 0, 'failure', 'lease_parser', 'enterprise', 'native', 2, 'hx'),
    (date '2026-02-12', 'x-3', 'X', 3, timestamp '2026-02-11 09:00:40', 'openai', 'gpt-4o',
     1000, 100, 0, 'success', 'lease_parser', 'enterprise', 'native', 3, 'hx'),
    (date '2026-02-12', 'y-1', 'Y', 1, timestamp '2026-02-11 10:00:00', 'openai', 'gpt-4o',
     2000, 0, 0, 'success', 'lease_parser', 'smb', 'native', 4, 'hy'),
    (date '2026-02-14', 'm-1', 'M1', 1, timestamp '2026-02-13 08:00:00', 'openai', 'gpt-4o',
     1000, 0, 0, 'success', 'call_recap', 'smb', 'native', 5, 'hp'),
    (date '2026-02-14', 'm-2', 'M2', 1, timestamp '2026-02-13 08:05:00', 'openai', 'gpt-4o',
     1000, 0, 600, 'success', 'call_recap', 'smb', 'native', 6, 'hp'),
    (date '2026-02-14', 'm-3', 'M3', 1, timestamp '2026-02-13 08:10:00', 'openai', 'gpt-4o',
     1000, 0, 0, 'success', 'call_recap', 'smb', 'native', 7, 'hp')
) as v(load_date, request_id, trace_id, attempt, call_ts, provider, model, input_tokens,
       output_tokens, cache_read_input_tokens, outcome, feature, customer_segment,
       source_format, source_line, prompt_prefix_hash)
"""


# The organisation's configuration folder, written by the test: invented features, teams, cost
# centres and budgets (not the demo company's), and a 15% Azure discount.
OUTCOME = "a logical request whose final attempt has outcome success"
ORG_CONFIG = {
    "teams.csv": (
        "team,cost_centre,cost_centre_name,business_unit\n"
        "claims-ops,FIN-10,Claims Operations,Operations\n"
        "docs-team,FIN-20,Policy Content,Product\n"
        "kb-team,FIN-20,Policy Content,Product\n"
        "workplace,FIN-20,Policy Content,Product\n"
        "platform-eng,FIN-30,Platform,Engineering\n"
        "revenue,FIN-40,Revenue,Go-to-market\n"
        "real-estate,FIN-50,Facilities,G&A\n"
    ),
    "features.csv": (
        "feature,unit_of_work,outcome_rule,owner_team,budget_per_outcome_usd,quality_bar,"
        "value_per_outcome_usd,launched_on\n"
        f"claims_triage,claim,{OUTCOME},claims-ops,0.0300,0.80,4.50,2025-01-15\n"
        f"policy_digest,document,{OUTCOME},docs-team,0.0200,0.75,1.20,2025-03-01\n"
        f"pr_linter,pull request,{OUTCOME},platform-eng,0.0700,0.85,6.00,2025-02-10\n"
        f"kb_lookup,query,{OUTCOME},kb-team,0.0030,0.70,0.15,2024-11-01\n"
        f"outreach_writer,email,{OUTCOME},revenue,0.0050,0.70,0.60,2025-05-20\n"
        f"lease_parser,lease,{OUTCOME},real-estate,0.4000,0.90,12.00,2025-04-01\n"
        f"call_recap,call,{OUTCOME},workplace,0.0300,0.75,2.00,2026-01-01\n"
    ),
    "budgets.csv": (
        "feature,monthly_budget_usd\n"
        "claims_triage,900.00\npolicy_digest,250.00\npr_linter,2000.00\nkb_lookup,70.00\n"
        "outreach_writer,60.00\nlease_parser,400.00\ncall_recap,200.00\n"
    ),
    "negotiated_prices.csv": (
        "provider,model,valid_from,valid_to,discount_pct,input_per_mtok,cache_read_per_mtok,"
        "cache_write_per_mtok,output_per_mtok,note\n"
        "azure_openai,*,2025-01-01,,15,,,,,an Azure commitment at 15% off list\n"
    ),
}


def write_org_config(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in ORG_CONFIG.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def build_marts_warehouse(root: Path) -> str:
    """Create a DuckDB warehouse under ``root`` with the test calls, build the marts and
    return the warehouse URL.

    Two dbt invocations: everything upstream of the marts without its tests (those belong to
    the foundation's suite), then the marts and the seeds they read with all their data
    tests, unit tests and the chargeback invariants."""
    url = f"duckdb:///{root / 'wh' / 'tokenbook.duckdb'}"
    settings = load_settings(warehouse=url, config_dir=str(write_org_config(root / "config")))
    con = connect_duckdb(parse_warehouse(url))
    try:
        con.execute(duckdb_ddl("raw.gateway_calls", GATEWAY_CALLS_COLUMNS))
        con.execute(GENERATED_CALLS)
        con.execute(HAND_CALLS)
    finally:
        con.close()
    target = root / "dbt"
    upstream = [f"+{name}" for name in MARTS]
    run_dbt(
        [
            "build",
            "--select",
            *upstream,
            "--exclude",
            *MARTS,
            "--exclude-resource-type",
            "test",
            "unit_test",
        ],
        settings,
        target_path=target,
    )
    run_dbt(["build", "--select", *PER_ROW, *MARTS, *SEEDS], settings, target_path=target)
    return url


@pytest.fixture(scope="module")
def warehouse(marts_warehouse_built, tmp_path_factory: pytest.TempPathFactory) -> str:
    # built once per session by build_marts_warehouse (tests/conftest.py); this module's copy
    root, url = marts_warehouse_built
    return copy_warehouse_tree(root, tmp_path_factory.mktemp("marts") / "copy", url)


@pytest.fixture(scope="module")
def con(warehouse: str):
    # Same configuration as dbt's in-process connection (DuckDB refuses a second one that
    # differs, e.g. read-only, on the same file in one process).
    connection = connect_duckdb(parse_warehouse(warehouse))
    yield connection
    connection.close()


def rows(con, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def test_chargeback_totals_equal_the_calls_fact_every_month(con) -> None:
    diffs = rows(
        con,
        """
        with fact as (
            select call_month, count(*) as calls, sum(list_cost_usd) as list_cost,
                   sum(effective_cost_usd) as effective_cost
            from marts.fct_llm_calls group by call_month
        ), cb as (
            select month_start, sum(calls) as calls, sum(list_cost_usd) as list_cost,
                   sum(effective_cost_usd) as effective_cost
            from marts.mart_chargeback group by month_start
        ), cust as (
            select month_start, sum(effective_cost_usd) as effective_cost
            from marts.mart_chargeback_customer group by month_start
        )
        select fact.*, cb.calls as cb_calls, cb.list_cost as cb_list, cb.effective_cost as cb_eff,
               cust.effective_cost as cust_eff
        from fact
        left join cb on fact.call_month = cb.month_start
        left join cust on fact.call_month = cust.month_start
        order by call_month
        """,
    )
    assert [d["call_month"] for d in diffs] == [
        date(2025, 12, 1),
        date(2026, 1, 1),
        date(2026, 2, 1),
    ]
    for d in diffs:
        assert d["calls"] == d["cb_calls"]
        assert d["list_cost"] == d["cb_list"]
        assert d["effective_cost"] == d["cb_eff"] == d["cust_eff"]
    # The Azure discount makes effective cost differ from list cost: both are carried.
    total = rows(
        con, "select sum(list_cost_usd) l, sum(effective_cost_usd) e from marts.mart_chargeback"
    )
    assert total[0]["e"] < total[0]["l"]
    shares = rows(
        con,
        "select month_start, sum(share_of_month_effective_cost) s from marts.mart_chargeback group by 1",
    )
    assert all(abs(r["s"] - 1.0) < 1e-9 for r in shares)


def test_untagged_spend_lands_in_an_unattributed_bucket(con) -> None:
    bucket = rows(
        con,
        """
        select sum(effective_cost_usd) as cost, sum(calls) as calls from marts.mart_chargeback
        where team = '(unattributed)' and cost_centre = '(unattributed)'
        """,
    )[0]
    expected = rows(
        con,
        """
        select sum(effective_cost_usd) as cost, count(*) as calls from marts.fct_llm_calls
        where team = '(unattributed)' and cost_centre = '(unattributed)'
        """,
    )[0]
    assert expected["calls"] == 60  # every sixth trace has no feature: 30 traces x 2 attempts
    assert bucket == expected
    no_segment = rows(
        con,
        "select count(*) n from marts.mart_chargeback where customer_segment = '(unattributed)'",
    )
    assert no_segment[0]["n"] > 0
    # The unattributed mart accounts for the same untagged spend, by source and week.
    unattributed = rows(
        con,
        "select sum(unattributed_effective_cost_usd) u, sum(effective_cost_usd) t "
        "from marts.mart_unattributed_spend",
    )[0]
    fact = rows(
        con,
        """
        select sum(case when feature = '(unattributed)' or customer_segment = '(unattributed)'
                        then coalesce(effective_cost_usd, 0) else 0 end) u,
               sum(coalesce(effective_cost_usd, 0)) t
        from marts.fct_llm_calls
        """,
    )[0]
    assert unattributed == fact
    assert 0 < unattributed["u"] < unattributed["t"]


def test_cost_per_outcome_of_a_hand_computed_week(con) -> None:
    (row,) = rows(
        con,
        """
        select * from marts.mart_cost_per_outcome
        where feature = 'lease_parser' and period = 'week' and period_start = ?
        """,
        [date(2026, 2, 9)],
    )
    assert row["calls"] == 4
    assert row["logical_requests"] == 2  # the 3-attempt retry is one request
    assert row["outcomes"] == 2
    assert row["effective_cost_usd"] == Decimal("0.0155")
    assert row["cost_per_call_usd"] == Decimal("0.003875")
    assert row["cost_per_outcome_usd"] == Decimal("0.00775")
    assert row["budget_per_outcome_usd"] == Decimal("0.4")
    assert row["budget_status"] == "under"
    assert row["net_value_per_outcome_usd"] == Decimal("11.99225")
    assert row["previous_effective_cost_usd"] is None  # first week of the feature


def test_cost_per_outcome_never_counts_more_outcomes_than_requests(con) -> None:
    bad = rows(
        con,
        "select * from marts.mart_cost_per_outcome where outcomes > logical_requests "
        "or logical_requests > calls",
    )
    assert bad == []
    # Weeks and months cover the same calls.
    totals = rows(
        con,
        "select period, sum(calls) c, sum(logical_requests) r, sum(outcomes) o "
        "from marts.mart_cost_per_outcome group by period order by period",
    )
    assert totals[0]["c"] == totals[1]["c"] == 367
    assert totals[0]["r"] == totals[1]["r"]
    # Generated traces succeed when (trace % 3) != 0: 120 of 180; hand-written: X, Y, M1-M3.
    assert totals[0]["o"] == totals[1]["o"] == 125


def test_cache_efficiency_of_a_hand_computed_week(con) -> None:
    (row,) = rows(
        con,
        "select * from marts.mart_cache_efficiency where feature = 'call_recap' and week_start = ?",
        [date(2026, 2, 9)],
    )
    assert (row["provider"], row["model"]) == ("openai", "gpt-4o")
    assert row["calls"] == 3
    assert row["could_hit_calls"] == 2
    assert row["could_hit_calls_with_cache_read"] == 1
    assert row["cache_hit_rate"] == 0.5
    assert row["cache_read_share"] == pytest.approx(600 / 3000)
    assert row["cache_savings_usd"] == Decimal("0.00075")
    assert row["missed_cache_tokens"] == 600
    assert row["missed_cache_savings_usd"] == Decimal("0.00075")


def test_budget_vs_actual_projects_the_open_month(con) -> None:
    (total,) = rows(
        con,
        "select * from marts.mart_budget_vs_actual where budget_level = 'total' and month_start = ?",
        [date(2026, 2, 1)],
    )
    # The latest call is on 2026-02-17: 17 of February's 28 days have elapsed.
    assert total["as_of_date"] == date(2026, 2, 17)
    assert (total["days_elapsed"], total["days_in_month"]) == (17, 28)
    assert not total["is_month_complete"]
    actual = rows(
        con,
        "select sum(effective_cost_usd) e from marts.fct_llm_calls where call_month = ?",
        [date(2026, 2, 1)],
    )[0]["e"]
    assert total["actual_effective_cost_usd"] == actual
    assert total["projected_month_end_usd"] == pytest.approx(actual * 28 / 17, abs=Decimal("1e-9"))
    # The total budget is the sum of the seven features' monthly budgets (features seed).
    assert total["monthly_budget_usd"] == Decimal("3880")
    assert total["variance_usd"] == total["projected_month_end_usd"] - total["monthly_budget_usd"]
    assert total["budget_status"] == "under"
    (january,) = rows(
        con,
        "select * from marts.mart_budget_vs_actual where budget_level = 'total' and month_start = ?",
        [date(2026, 1, 1)],
    )
    assert january["is_month_complete"]
    assert january["projected_month_end_usd"] == january["actual_effective_cost_usd"]
