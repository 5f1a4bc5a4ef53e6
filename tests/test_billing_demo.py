"""The demo organisation's vendor exports: derived from its gateway logs, loadable by the billing
parsers, with the planted gaps where the returned description says, moving with the seed."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from ingestion.billing.loader import ingest_billing
from tokenbook.demo import generate
from tokenbook.demo.billing import VENDOR_OF_PROVIDER, write_vendor_exports

END = date(2026, 12, 8)  # the period straddles a month boundary
VENDORS = ("openai", "anthropic", "gcp", "aws", "azure")


def build(root: Path, seed: int) -> tuple[Path, dict, duckdb.DuckDBPyConnection]:
    demo = root / f"demo-{seed}"
    manifest = generate(demo, days=21, end=END, seed=seed, scale=0.02)
    billing = write_vendor_exports(demo, manifest, seed)["billing"]
    con = duckdb.connect()
    for vendor in VENDORS:
        ingest_billing(con, vendor, [demo / "billing" / vendor])
    # what the gateway saw: valid calls (as gateway ingestion validates them), deduplicated
    con.execute(
        f"""create table gw as
        select * from (
          select request_id, try_cast("timestamp" as TIMESTAMPTZ) as ts, provider, model,
            try_cast(input_tokens as BIGINT) as inp, try_cast(output_tokens as BIGINT) as outp,
            coalesce(try_cast(cache_read_input_tokens as BIGINT), 0)
              + coalesce(try_cast(cache_write_input_tokens as BIGINT), 0) as cache,
            api_key_id
          from read_json('{demo}/gateway/*.jsonl.gz', format='newline_delimited',
            columns={{'request_id': 'VARCHAR', 'timestamp': 'VARCHAR', 'provider': 'VARCHAR',
                     'model': 'VARCHAR', 'input_tokens': 'VARCHAR', 'output_tokens': 'VARCHAR',
                     'api_key_id': 'VARCHAR', 'cache_read_input_tokens': 'VARCHAR',
                     'cache_write_input_tokens': 'VARCHAR'}}, ignore_errors=true))
        where ts is not null and inp >= 0 and outp >= 0 and model is not null and cache <= inp
          and request_id is not null
        qualify row_number() over (partition by request_id order by ts) = 1"""
    )
    return demo, billing, con


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    root = tmp_path_factory.mktemp("billing-demo")
    return {seed: build(root, seed) for seed in (7, 11)}


@pytest.mark.parametrize("seed", [7, 11])
def test_every_vendor_export_loads_cleanly_and_totals_match(demos, seed):
    demo, billing, con = demos[seed]
    audit = con.execute(
        "select source, sum(rows_read), sum(rows_loaded), sum(rows_quarantined), "
        "sum(rows_duplicate) from raw.load_audit group by 1 order by 1"
    ).fetchall()
    assert [a[0] for a in audit] == sorted(f"billing_{v}" for v in VENDORS)
    for source, read, loaded, quarantined, dup in audit:
        assert read == loaded > 0 and quarantined == dup == 0, source
    totals = dict(
        con.execute("select vendor, sum(billed_cost) from raw.billing_lines group by 1").fetchall()
    )
    for vendor in VENDORS:
        assert totals[vendor] == Decimal(billing["vendors"][vendor]["billed_cost_usd"])
        assert totals[vendor] > 0
        for f in billing["vendors"][vendor]["files"]:
            assert (demo / f).is_file()
    # the monthly exports are split by invoice month
    assert {Path(f).name for f in billing["vendors"]["aws"]["files"]} == {
        "cur2-2026-11.csv", "cur2-2026-12.csv"
    }  # fmt: skip
    # every billed model resolves onto a canonical provider
    assert (
        con.execute(
            "select count(*) from raw.billing_lines where provider is null or model is null"
        ).fetchone()[0]
        == 0
    )


@pytest.mark.parametrize("seed", [7, 11])
def test_unlogged_api_key_is_billed_and_never_logged(demos, seed):
    _, billing, con = demos[seed]
    gap = billing["gaps"]["unlogged_api_key"]
    assert gap["vendor"] in ("openai", "anthropic")
    billed = con.execute(
        "select min(usage_date), max(usage_date), sum(tokens) filter (where token_type <> "
        "'request'), sum(billed_cost), count(distinct model) from raw.billing_lines "
        "where api_key_id = ? and vendor = ?",
        [gap["api_key_id"], gap["vendor"]],
    ).fetchone()
    assert billed[0] == date.fromisoformat(gap["start"])
    assert billed[1] <= date.fromisoformat(gap["end"])
    assert billed[2] == gap["tokens"] > 0
    assert billed[4] == 1
    # cost lines carry no key: the shadow usage's cost sits in the vendor's cost lines
    cost = con.execute(
        "select sum(billed_cost) from raw.billing_lines where vendor = ? and record_type = 'cost'"
        " and model = ? and usage_date between ? and ?",
        [gap["vendor"], gap["model"], gap["start"], gap["end"]],
    ).fetchone()[0]
    assert cost >= Decimal(gap["billed_cost_usd"]) > 0
    assert (
        con.execute("select count(*) from gw where api_key_id = ?", [gap["api_key_id"]]).fetchone()[
            0
        ]
        == 0
    )
    # every other billed key was seen by the gateway
    other = con.execute(
        "select distinct api_key_id from raw.billing_lines where api_key_id is not null "
        "and api_key_id <> ? and api_key_id not in (select api_key_id from gw "
        "where api_key_id is not null)",
        [gap["api_key_id"]],
    ).fetchall()
    assert other == []


@pytest.mark.parametrize("seed", [7, 11])
def test_one_model_is_billed_at_a_price_the_book_does_not_know(demos, seed):
    _, billing, con = demos[seed]
    gap = billing["gaps"]["unknown_price"]
    # billed unit price per token type and period (USD per million tokens), from the bill itself
    # (cost-report lines carry the cost, usage-report lines the tokens: sum both per group)
    rows = con.execute(
        """select token_type, usage_date >= ? as after,
             round(sum(billed_cost) / sum(tokens) * 1000000, 6)
           from raw.billing_lines
           where vendor = ? and model = ? and token_type in ('input', 'output')
             and not coalesce(is_batch, false)
           group by all""",
        [gap["from"], gap["vendor"], gap["model"]],
    ).fetchall()
    seen = {(tt, after): price for tt, after, price in rows}
    for tt in gap["token_types"]:
        billed = Decimal(gap["billed_price_per_mtok"][tt])
        book = Decimal(gap["book_price_per_mtok"][tt])
        assert billed != book
        if (tt, True) in seen:
            assert abs(Decimal(str(seen[(tt, True)])) - billed) < Decimal("0.0001")
        if (tt, False) in seen:
            assert abs(Decimal(str(seen[(tt, False)])) - book) < Decimal("0.0001")
        assert (tt, True) in seen or (tt, False) in seen


@pytest.mark.parametrize("seed", [7, 11])
def test_timezone_vendor_shifts_usage_between_days_but_not_in_total(demos, seed):
    _, billing, con = demos[seed]
    gap = billing["gaps"]["timezone_boundary"]
    assert gap["vendor"] in ("gcp", "aws", "azure") and gap["timezone"] != "UTC"
    provider = gap["provider"]
    aliases = [p for p, v in VENDOR_OF_PROVIDER.items() if v == gap["vendor"]]
    assert aliases == [provider]
    raw = {"vertex_ai": ("vertex_ai", "google"), "bedrock": ("bedrock", "aws_bedrock"),
           "azure_openai": ("azure_openai", "azure")}[provider]  # fmt: skip
    billed = dict(
        con.execute(
            "select usage_date, sum(tokens) from raw.billing_lines where vendor = ? and "
            "token_type in ('input', 'cache_read', 'cache_write_5m', 'cache_write_1h') "
            "group by 1",
            [gap["vendor"]],
        ).fetchall()
    )
    logged = dict(
        con.execute(
            f"select cast(timezone('UTC', ts) as DATE), sum(inp) from gw "
            f"where provider in {raw} group by 1"
        ).fetchall()
    )
    assert sum(billed.values()) == sum(logged.values())  # nothing lost over the period
    assert any(billed.get(d, 0) != logged.get(d, 0) for d in set(billed) | set(logged))


def test_other_vendors_bill_exactly_the_logged_tokens(demos):
    _, billing, con = demos[7]
    gaps = billing["gaps"]
    skip = {gaps["timezone_boundary"]["vendor"]}
    for vendor, provider in ((v, p) for p, v in VENDOR_OF_PROVIDER.items()):
        if vendor in skip:
            continue
        billed = con.execute(
            "select usage_date, sum(tokens) from raw.billing_lines where vendor = ? and "
            "record_type <> 'cost' and api_key_id is distinct from ? and token_type in "
            "('input', 'cache_read', 'cache_write_5m', 'cache_write_1h') group by 1 order by 1",
            [vendor, gaps["unlogged_api_key"]["api_key_id"]],
        ).fetchall()
        assert billed, vendor
        logged = con.execute(
            "select cast(timezone('UTC', ts) as DATE), sum(inp) from gw join "
            "(select unnest(?) as p) on gw.provider = p where inp > 0 group by 1 order by 1",
            [{"openai": ["openai"], "anthropic": ["anthropic"], "vertex_ai": ["vertex_ai",
              "google"], "bedrock": ["bedrock", "aws_bedrock"],
              "azure_openai": ["azure_openai", "azure"]}[provider]],
        ).fetchall()  # fmt: skip
        assert billed == logged, vendor


def test_gaps_move_with_the_seed(demos):
    a, b = demos[7][1]["gaps"], demos[11][1]["gaps"]
    assert a != b
    assert (a["unlogged_api_key"]["api_key_id"], a["unlogged_api_key"]["start"]) != (
        b["unlogged_api_key"]["api_key_id"], b["unlogged_api_key"]["start"]
    )  # fmt: skip
