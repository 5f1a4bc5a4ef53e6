"""The invoice reconciliation, built for real on the demo organisation for two seeds.

For each seed: the demo's gateway logs and matching vendor exports (with the three planted gaps:
an API key the gateway never logged, one model billed at a price the book does not know, one
vendor cutting its days in another time zone) are ingested into a DuckDB warehouse and dbt
builds the reconciliation, FOCUS and reconciled chargeback marts with their tests. The tests
check that each planted gap is found where the generator says, classified as what it is, and
nothing else is mistaken for it; and that the invoice money is kept to the nano-dollar.

``demo_warehouse(seed)`` is shared with tests/test_focus.py (built once per session).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

SEEDS = (7, 11)
END = date(2026, 11, 27)
VENDORS = ("openai", "anthropic", "gcp", "aws", "azure")
SELECT = ["+mart_reconciliation", "+fct_focus_cost", "+mart_chargeback_reconciled"]
THRESHOLD = 0.02


@dataclass(frozen=True)
class DemoWarehouse:
    seed: int
    url: str
    path: Path
    root: Path
    billing: dict  # write_vendor_exports(...)["billing"]: files, totals, gaps
    dbt_nodes: dict  # unique_id -> status of the dbt build

    def connect(self) -> duckdb.DuckDBPyConnection:
        # read-write: dbt ran in this process and DuckDB refuses a second configuration
        return duckdb.connect(str(self.path))


_BUILT: dict[int, DemoWarehouse] = {}
_ROOT = Path(tempfile.mkdtemp(prefix="tokenbook-recon-"))


def demo_warehouse(seed: int) -> DemoWarehouse:
    """Demo (45 days to 2026-11-27, scale 0.03) -> vendor exports -> gateway and billing
    ingestion -> dbt build of the finance marts, once per seed per session."""
    if seed in _BUILT:
        return _BUILT[seed]
    from core.settings import load_settings
    from core.warehouse import connect_duckdb, parse_warehouse
    from ingestion.billing.loader import ingest_billing
    from ingestion.gateway.pipeline import ingest_gateway
    from tokenbook.dbt import run_dbt
    from tokenbook.demo import generate
    from tokenbook.demo.billing import write_vendor_exports

    root = _ROOT / f"seed-{seed}"
    demo = root / "demo"
    manifest = generate(demo, days=45, end=END, seed=seed, scale=0.03)
    billing = write_vendor_exports(demo, manifest, seed)["billing"]
    path = root / "wh" / "tokenbook.duckdb"
    path.parent.mkdir(parents=True)
    url = f"duckdb:///{path}"
    settings = load_settings(warehouse=url, dbt_target_path=str(root / "dbt"),
                             config_dir=str(demo / "config"))
    ingest_gateway(sorted(str(p) for p in (demo / "gateway").glob("*.jsonl.gz")), settings)  # fmt: skip
    con = connect_duckdb(parse_warehouse(url))
    try:
        # A restated load first: the Azure export loaded once under an earlier load date, then
        # again under its own (below). Staging must keep one copy of each line (latest load).
        ingest_billing(con, "azure", sorted((demo / "billing" / "azure").glob("*.csv")),
                       load_date=date(2026, 11, 20), window_days_before=10_000,
                       window_days_after=10_000)  # fmt: skip
        for vendor in VENDORS:  # as tokenbook.runner._ingest_billing does
            files = sorted(str(p) for p in (demo / "billing" / vendor).rglob("*") if p.is_file())
            ingest_billing(con, vendor, files, window_days_before=10_000,
                           window_days_after=10_000)  # fmt: skip
    finally:
        con.close()
    res = run_dbt(["build", "--quiet", "--select", *SELECT, "--indirect-selection", "cautious"],
                  settings)  # fmt: skip
    nodes = {r.node.unique_id: str(r.status) for r in res.result.results}
    built = DemoWarehouse(seed, url, path, root, billing, nodes)
    _BUILT[seed] = built
    return built


@pytest.fixture(scope="module", params=SEEDS, ids=[f"seed{s}" for s in SEEDS])
def wh(request) -> DemoWarehouse:
    return demo_warehouse(request.param)


def rows(wh: DemoWarehouse, sql: str, params: list | None = None) -> list[dict]:
    con = wh.connect()
    try:
        cur = con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def family(wh: DemoWarehouse, provider: str, billed_model: str) -> str:
    """The reconciliation key of a billed model (as int_vendor_cost_lines resolved it)."""
    found = rows(
        wh,
        "select distinct model_family from staging.int_vendor_cost_lines "
        "where provider = ? and billed_model = ?",
        [provider, billed_model],
    )
    assert len(found) == 1, found
    return found[0]["model_family"]


def test_dbt_built_the_finance_marts_with_their_tests(wh):
    nodes = wh.dbt_nodes
    for name in ("mart_reconciliation", "fct_focus_cost", "mart_chargeback_reconciled",
                 "int_vendor_cost_lines", "stg_billing__lines"):  # fmt: skip
        assert nodes[f"model.tokenbook.{name}"] == "success"
    singular = [u for u in nodes if u.startswith("test.tokenbook.assert_")]
    for name in ("assert_focus_allocated_equals_billed",
                 "assert_vendor_lines_keep_every_billed_dollar",
                 "assert_reconciliation_months_sum_days"):  # fmt: skip
        assert nodes[f"test.tokenbook.{name}"] == "pass", name
    assert singular
    units = {u for u in nodes if u.startswith("unit_test.tokenbook.")}
    assert (
        "unit_test.tokenbook.mart_reconciliation.reconciliation_classifies_each_kind_of_gap"
        in units
    )
    assert all(nodes[u] == "pass" for u in units)


def test_the_unlogged_api_key_is_classified_unlogged_usage_on_its_days_only(wh):
    gap = wh.billing["gaps"]["unlogged_api_key"]
    model = family(wh, gap["provider"], gap["model"])
    found = rows(
        wh,
        "select grain, period_start, provider, model, unlogged_tokens, unlogged_api_key_id, "
        "is_flagged from marts.mart_reconciliation where gap_class = 'unlogged_usage' "
        "order by grain, period_start",
    )
    days = [r for r in found if r["grain"] == "day"]
    assert {(r["provider"], r["model"]) for r in found} == {(gap["provider"], model)}
    assert days[0]["period_start"] == date.fromisoformat(gap["start"])
    assert days[-1]["period_start"] <= date.fromisoformat(gap["end"])
    assert all(r["unlogged_api_key_id"] == gap["api_key_id"] and r["is_flagged"] for r in days)
    assert sum(r["unlogged_tokens"] for r in days) == gap["tokens"]
    months = [r for r in found if r["grain"] == "month"]
    assert sum(r["unlogged_tokens"] for r in months) == gap["tokens"]
    # its cost, as billed, is in the mart too
    cost = rows(
        wh,
        "select sum(unlogged_cost_usd) as c from marts.mart_reconciliation where grain = 'day'",
    )[0]["c"]
    assert cost == Decimal(gap["billed_cost_usd"])


def test_the_unknown_price_is_a_price_mismatch_from_its_first_day(wh):
    gap = wh.billing["gaps"]["unknown_price"]
    model = family(wh, gap["provider"], gap["model"])
    start = date.fromisoformat(gap["from"])
    factor = float(gap["factor"])
    days = rows(
        wh,
        "select period_start, gap_class, price_variance_pct, price_variance_usd, is_flagged "
        "from marts.mart_reconciliation where grain = 'day' and provider = ? and model = ? "
        "order by period_start",
        [gap["provider"], model],
    )
    after = [r for r in days if r["period_start"] >= start]
    before = [r for r in days if r["period_start"] < start]
    assert after
    for r in after:
        # the bill is above the book by up to the planted factor (cache lines stay at book price)
        assert THRESHOLD < r["price_variance_pct"] <= factor - 1 + 1e-9, r
        assert r["gap_class"] == "price_mismatch" and r["is_flagged"], r
    for r in before:
        assert abs(r["price_variance_pct"] or 0) < 1e-9, r
    extra = sum(r["price_variance_usd"] for r in after)
    assert abs(extra - Decimal(gap["extra_cost_usd"])) <= Decimal("0.000001") * len(after)
    # no other model's bill departs from the price book
    others = rows(
        wh,
        "select provider, model, period_start from marts.mart_reconciliation "
        "where abs(price_variance_pct) > ? and not (provider = ? and model = ?)",
        [THRESHOLD, gap["provider"], model],
    )
    assert others == []
    month = rows(
        wh,
        "select gap_class from marts.mart_reconciliation where grain = 'month' and provider = ? "
        "and model = ? and period_start = ?",
        [gap["provider"], model, start.replace(day=1)],
    )
    assert month == [{"gap_class": "price_mismatch"}]


def test_the_time_zone_vendor_is_timing_by_day_and_agrees_by_month(wh):
    gap = wh.billing["gaps"]["timezone_boundary"]
    days = rows(
        wh,
        "select provider, model, period_start, gap_class, token_variance, token_variance_pct "
        "from marts.mart_reconciliation where grain = 'day' and token_variance <> 0 "
        "and unlogged_tokens = 0",
    )
    shifted = [r for r in days if r["provider"] == gap["provider"]]
    assert len(shifted) >= 10  # the boundary moves usage on most days
    assert any(abs(r["token_variance_pct"] or 1) > THRESHOLD for r in shifted)
    flagged = [r for r in shifted if r["gap_class"] != "match"]
    assert flagged and all(r["gap_class"] == "timing" for r in flagged), flagged
    # only the time-zone vendor has timing gaps
    timing = rows(
        wh, "select distinct provider from marts.mart_reconciliation where gap_class = 'timing'"
    )
    assert timing == [{"provider": gap["provider"]}]
    # over each month the vendor's tokens agree within the threshold
    months = rows(
        wh,
        "select model, period_start, token_variance_pct, gap_class "
        "from marts.mart_reconciliation where grain = 'month' and provider = ?",
        [gap["provider"]],
    )
    assert months
    for m in months:
        assert abs(m["token_variance_pct"]) <= THRESHOLD, m
        assert m["gap_class"] in ("match", "timing", "price_mismatch"), m
    # and over the whole period the shifts cancel (what is left is a few calls the gateway
    # quarantined but the vendor billed, far below the threshold)
    total = rows(
        wh,
        "select sum(token_variance) as v, sum(gateway_tokens) as g, "
        "sum(abs(token_variance)) as moved from marts.mart_reconciliation "
        "where grain = 'day' and provider = ?",
        [gap["provider"]],
    )[0]
    assert abs(total["v"]) < 0.001 * total["g"] < total["moved"]


def test_threshold_comes_from_the_seed(wh):
    got = rows(wh, "select distinct variance_threshold as t from marts.mart_reconciliation")
    assert got == [{"t": THRESHOLD}]


def test_invoice_money_is_kept_exactly_through_staging_lines_and_focus(wh):
    billed = {v: Decimal(d["billed_cost_usd"]) for v, d in wh.billing["vendors"].items()}
    raw = rows(
        wh,
        "select vendor, count(*) - count(distinct line_id) as dup from raw.billing_lines "
        "group by vendor",
    )
    assert {r["vendor"]: r["dup"] for r in raw}["azure"] > 0  # the restated load is in raw
    lines = rows(
        wh,
        "select vendor, sum(billed_cost) as c from staging.int_vendor_cost_lines group by 1",
    )
    assert {r["vendor"]: r["c"] for r in lines} == billed
    focus = rows(wh, "select x_vendor as vendor, sum(billed_cost) as c from marts.fct_focus_cost "
                     "group by 1")  # fmt: skip
    assert {r["vendor"]: r["c"] for r in focus} == billed


def test_focus_rows_carry_the_allocation_in_tags(wh):
    gap = wh.billing["gaps"]["unlogged_api_key"]
    tags = rows(
        wh,
        "select tags, x_feature, x_customer_segment, x_team, x_allocation_basis, x_api_key_id "
        "from marts.fct_focus_cost",
    )
    bases = {r["x_allocation_basis"] for r in tags}
    assert "day" in bases and bases <= {"day", "month", "unattributed", "unlogged_api_key"}
    for r in tags[:2000]:
        t = json.loads(r["tags"])
        assert t == {"feature": r["x_feature"], "segment": r["x_customer_segment"],
                     "team": r["x_team"]}  # fmt: skip
    shadow = [r for r in tags if r["x_api_key_id"] == gap["api_key_id"]]
    assert shadow and all(
        r["x_feature"] == "(unattributed)" and r["x_allocation_basis"] == "unlogged_api_key"
        for r in shadow
    )
    # every feature the gateway logged on a provider that invoices gets a share of the
    # invoices, and no feature it did not log: the set comes from the calls loaded, not from
    # the demo's cast of features
    logged = {r["feature"] for r in rows(
        wh,
        "select distinct coalesce(feature, '(unattributed)') as feature from marts.fct_llm_calls "
        "where provider in (select provider from staging.int_vendor_cost_lines)",
    )}  # fmt: skip
    assert len(logged) > 2 and {r["x_feature"] for r in tags} == logged


def test_chargeback_reconciled_puts_gateway_and_invoice_side_by_side(wh):
    got = rows(
        wh,
        "select month_start, sum(gateway_effective_cost_usd) as g, "
        "sum(invoice_billed_cost_usd) as i, sum(reconciled_cost_usd) as r "
        "from marts.mart_chargeback_reconciled group by 1 order by 1",
    )
    gateway = rows(
        wh,
        "select month_start, sum(effective_cost_usd) as g from marts.mart_chargeback "
        "group by 1 order by 1",
    )
    invoice = rows(
        wh,
        "select date_trunc('month', x_usage_date)::DATE as month_start, "
        "sum(billed_cost) as i from marts.fct_focus_cost group by 1 order by 1",
    )
    assert [(r["month_start"], r["g"]) for r in got] == [
        (r["month_start"], r["g"]) for r in gateway
    ]
    assert [(r["month_start"], r["i"]) for r in got] == [
        (r["month_start"], r["i"]) for r in invoice
    ]
    assert all(r["r"] == r["i"] for r in got)  # no credits in the demo: effective = billed
