"""The dbt data tests on ranges (money, shares, rates, token counts) and on the calls fact's
relationships to the organisation's configuration pass on correct rows and catch a broken one.

`dbt test` runs for real on DuckDB against relations written here by hand: a data test reads the
relation its model names, whatever built it, so each rule is checked without a full build.
"""

from __future__ import annotations

import json

import duckdb
import pytest

from core.settings import load_settings
from tokenbook.dbt import DbtError, run_dbt

SELECT = [
    "fct_llm_calls,test_name:in_range",
    "fct_llm_calls,test_name:relationships",
    "mart_chargeback,test_name:in_range",
    "stg_fx__rates,test_name:in_range",
]

TOKENS = ["input_tokens", "uncached_input_tokens", "cache_read_input_tokens",
          "cache_write_input_tokens", "output_tokens", "reasoning_tokens"]


def _tables(con) -> None:
    con.execute("create schema if not exists marts")
    con.execute("create schema if not exists staging")
    con.execute("create or replace table staging.teams (team varchar, cost_centre varchar)")
    con.execute("insert into staging.teams values ('ledger-ops', 'CC-410'), ('triage-desk', 'CC-520')")
    con.execute("create or replace table staging.features (feature varchar)")
    con.execute("insert into staging.features values ('invoice_triage'), ('ticket_router')")
    con.execute("create or replace table staging.int_price_book (price_id varchar)")
    con.execute("insert into staging.int_price_book values ('zephyrai/lark-2@2026-01-01')")
    con.execute(
        "create or replace table marts.fct_llm_calls (call_id varchar, feature varchar,"
        " team varchar, cost_centre varchar, price_id varchar, "
        + ", ".join(f"{c} bigint" for c in TOKENS)
        + ", list_cost_usd decimal(38,9), effective_cost_usd decimal(38,9))"
    )
    con.execute(
        "create or replace table marts.mart_chargeback (input_tokens bigint, output_tokens bigint,"
        " list_cost_usd decimal(38,9), effective_cost_usd decimal(38,9),"
        " share_of_month_list_cost double, share_of_month_effective_cost double)"
    )
    con.execute("create or replace table staging.stg_fx__rates (rate_to_usd decimal(18,9))")


def _good_rows(con) -> None:
    tokens = "1200, 900, 300, 0, 80, 20"
    con.execute(f"""insert into marts.fct_llm_calls values
        ('c-1', 'invoice_triage', 'ledger-ops', 'CC-410', 'zephyrai/lark-2@2026-01-01', {tokens}, 0.0042, 0.0036),
        -- unattributed by design, and an unpriced call (null price id, null cost)
        ('c-2', '(unattributed)', '(unattributed)', '(unattributed)', null, {tokens}, null, null),
        -- a free call and a call that used its whole output on reasoning
        ('c-3', 'ticket_router', 'triage-desk', 'CC-520', 'zephyrai/lark-2@2026-01-01', 0, 0, 0, 0, 50, 50, 0, 0)""")
    con.execute("""insert into marts.mart_chargeback values
        (1200, 80, 0.0042, 0.0036, 1.0, 1.0), (0, 0, 0, 0, 0.0, 0.0), (10, 5, 0.1, 0.1, null, null)""")
    con.execute("insert into staging.stg_fx__rates values (1.08), (0.0065)")


def _run(settings, target) -> dict[str, str]:
    """status of every selected data test, by 'model.column:test' (dbt test failing is fine)."""
    try:
        run_dbt(["test", "--select", *SELECT], settings, target_path=target)
    except DbtError as exc:
        assert exc.tests_only, str(exc)  # only tests that found rows, never a broken test
    manifest = json.loads((target / "target" / "manifest.json").read_text())
    results = json.loads((target / "target" / "run_results.json").read_text())["results"]
    out = {}
    for r in results:
        if not r["unique_id"].startswith("test."):
            continue  # the on-run-start hooks
        node = manifest["nodes"][r["unique_id"]]
        model = node["attached_node"].split(".")[-1]
        out[f"{model}.{node['column_name']}:{node['test_metadata']['name']}"] = r["status"]
    return out


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("dbt_data_tests")
    (base / "config").mkdir()
    settings = load_settings(warehouse=f"duckdb:///{base / 'wh.duckdb'}", config_dir=str(base / "config"))
    con = duckdb.connect(str(base / "wh.duckdb"))
    _tables(con)
    _good_rows(con)
    con.close()
    return settings, base


def test_every_range_and_relationship_holds_on_correct_rows(warehouse):
    settings, base = warehouse
    statuses = _run(settings, base / "good")
    # every token count, cost, share and rate bound, and the four relationships, ran
    assert len([k for k in statuses if k.endswith(":in_range")]) == 6 + 2 + 6 + 1
    assert len([k for k in statuses if k.endswith(":relationships")]) == 4
    assert set(statuses.values()) == {"pass"}, {k: v for k, v in statuses.items() if v != "pass"}


def test_a_broken_row_fails_its_rule_and_only_its_rule(warehouse):
    settings, base = warehouse
    con = duckdb.connect(str(base / "wh.duckdb"))
    # cache tokens above input (uncached negative), a negative cost, a call priced with a row
    # the price book does not hold, a cost centre no team has, a feature tag nobody configured
    con.execute("""insert into marts.fct_llm_calls values
        ('bad-1', 'invoice_triage', 'ledger-ops', 'CC-410', 'zephyrai/lark-2@2026-01-01', 100, -50, 150, 0, 10, 0, -0.01, 0.001),
        ('bad-2', 'ticket_router', 'triage-desk', 'CC-999', 'zephyrai/lark-9@2026-01-01', 100, 100, 0, 0, 10, 0, 0.001, 0.001),
        ('bad-3', 'churn_scorer', 'ledger-ops', 'CC-410', 'zephyrai/lark-2@2026-01-01', 100, 100, 0, 0, 10, 0, 0.001, 0.001)""")
    # a share above 1, and an FX rate of 0 (a rate must be > 0, not >= 0)
    con.execute("insert into marts.mart_chargeback values (1, 1, 0.1, 0.1, 1.25, 0.5)")
    con.execute("insert into staging.stg_fx__rates values (0)")
    con.close()
    statuses = _run(settings, base / "bad")
    broken = {k: v for k, v in statuses.items() if v != "pass"}
    assert broken == {
        "fct_llm_calls.uncached_input_tokens:in_range": "fail",
        "fct_llm_calls.list_cost_usd:in_range": "fail",
        "fct_llm_calls.price_id:relationships": "fail",
        "fct_llm_calls.cost_centre:relationships": "fail",
        # an unknown feature tag keeps its spend under its name: warned, the build goes on
        "fct_llm_calls.feature:relationships": "warn",
        "mart_chargeback.share_of_month_list_cost:in_range": "fail",
        "stg_fx__rates.rate_to_usd:in_range": "fail",
    }
