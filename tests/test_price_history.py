"""Prices have a history: snapshots of the LiteLLM map loaded with the date they took effect,
in any order, never overwriting each other; each call priced with the version in force on its
date, or (dated before the first) with the earliest version and marked `earliest_known`; and
after a new version is loaded the next ordinary transform reprices exactly the calls it touches.

Costs worked by hand (USD per 1M tokens):
- `tb-ledger-model` (a model the shipped book does not hold): snapshot A, in force from
  2026-03-01, $1 in / $4 out; snapshot B, from 2026-06-01, $2 in / $8 out.
- `gpt-4o-mini`: shipped book $0.15 in; snapshot A $0.10 in (B agrees with A: no new row).
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from core.settings import load_settings
from core.warehouse import parse_warehouse
from ingestion.gateway.schema import GATEWAY_CALLS_COLUMNS
from tokenbook.dbt import build, ensure_raw_tables
from tokenbook.pricing.versions import load_prices

SELECT = ["+fct_llm_calls", "mart_price_basis"]
CAUTIOUS = ["--indirect-selection", "cautious"]


def _snapshot(path: Path, ledger_in: str, ledger_out: str, mini_in: str) -> Path:
    entry = {"litellm_provider": "openai", "mode": "chat", "max_input_tokens": 128000}
    path.write_text(
        json.dumps(
            {
                "tb-ledger-model": {
                    **entry,
                    "input_cost_per_token": float(Decimal(ledger_in) / 1_000_000),
                    "output_cost_per_token": float(Decimal(ledger_out) / 1_000_000),
                },
                "gpt-4o-mini": {
                    **entry,
                    "input_cost_per_token": float(Decimal(mini_in) / 1_000_000),
                    "output_cost_per_token": 6e-07,
                    "cache_read_input_token_cost": 7.5e-08,
                },
            }
        ),
        encoding="utf-8",
    )
    return path


CALLS = [
    # call id, date, model, input tokens, output tokens
    ("hist-before", "2026-02-10", "tb-ledger-model", 1_000_000, 500_000),
    ("hist-mid", "2026-04-15", "tb-ledger-model", 1_000_000, 500_000),
    ("hist-after", "2026-06-01", "tb-ledger-model", 1_000_000, 500_000),
    ("mini-before", "2026-02-10", "gpt-4o-mini", 1_000_000, 0),
    ("mini-after", "2026-03-05", "gpt-4o-mini", 1_000_000, 0),
]
OTHER = ("other-model", "2026-05-05", "claude-sonnet-4-5", 1_000_000, 0)


def _insert(con, calls) -> None:
    cols = [c for c, _, _ in GATEWAY_CALLS_COLUMNS]
    rows = []
    for i, (call_id, day, model, tokens_in, tokens_out) in enumerate(calls):
        row = {
            "load_date": day,
            "request_id": call_id,
            "call_ts": f"{day} 12:00:00",
            "provider": "anthropic" if model.startswith("claude") else "openai",
            "model": model,
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "feature": "ledger_audit",
            "source_format": "native",
            "source_file": f"gateway-{day}.jsonl",
            "source_line": i,
        }
        rows.append([row.get(c) for c in cols])
    con.executemany(
        f"insert into raw.gateway_calls ({', '.join(cols)}) values ({', '.join('?' * len(cols))})",
        rows,
    )


def _costs(con) -> dict[str, tuple]:
    return {
        r[0]: r[1:]
        for r in con.execute(
            "select call_id, effective_cost_usd, price_basis, price_id from marts.fct_llm_calls"
        ).fetchall()
    }


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("price_history")
    url = f"duckdb:///{base / 'wh.duckdb'}"
    settings, wh = load_settings(warehouse=url), parse_warehouse(url)
    ensure_raw_tables(settings)
    con = duckdb.connect(str(wh.path))
    _insert(con, [*CALLS, OTHER])
    con.close()
    snap_a = _snapshot(base / "litellm-a.json", "1", "4", "0.10")
    snap_b = _snapshot(base / "litellm-b.json", "2", "8", "0.10")
    target = base / "dbt"

    # the newer snapshot first, built; then the older one is found and loaded
    loaded_b = load_prices(snap_b, wh, date(2026, 6, 1))
    build(settings, select=SELECT, target_path=target, extra_args=CAUTIOUS)
    con = duckdb.connect(str(wh.path))
    only_b = _costs(con)
    con.close()
    loaded_a = load_prices(snap_a, wh, date(2026, 3, 1))
    again = load_prices(snap_a, wh, date(2026, 3, 1))
    build(settings, select=SELECT, target_path=target, extra_args=CAUTIOUS)
    con = duckdb.connect(str(wh.path))
    both = _costs(con)
    book = con.execute(
        "select model, valid_from, valid_to, input_per_mtok from staging.int_price_book "
        "where provider = 'openai' and model in ('tb-ledger-model', 'gpt-4o-mini') "
        "order by model, valid_from"
    ).fetchall()
    rebuilt = con.execute(
        "select distinct partition_date from raw.incremental_partitions order by 1"
    ).fetchall()
    invocations = con.execute(
        "select count(distinct invocation_id) from raw.incremental_partitions"
    ).fetchone()[0]
    basis = con.execute(
        "select month_start, catalog_model, price_basis, calls, effective_cost_usd "
        "from marts.mart_price_basis order by 1, 2, 3"
    ).fetchall()
    con.close()
    return {
        "loaded_a": loaded_a,
        "loaded_b": loaded_b,
        "again": again,
        "only_b": only_b,
        "both": both,
        "book": book,
        "rebuilt": [r[0] for r in rebuilt],
        "invocations": invocations,
        "basis": basis,
    }


def test_versions_slot_in_by_date_and_never_overwrite(history):
    assert (history["loaded_b"].new_models, history["loaded_b"].changed_models) == (1, 1)
    # A: tb-ledger-model before B's version (changed vs nothing in force: new), gpt-4o-mini
    assert history["loaded_a"].appended == 2
    assert history["again"].appended == 0
    assert history["book"] == [
        ("gpt-4o-mini", date(2000, 1, 1), date(2026, 3, 1), Decimal("0.15")),
        ("gpt-4o-mini", date(2026, 3, 1), date(2026, 6, 1), Decimal("0.1")),
        ("gpt-4o-mini", date(2026, 6, 1), None, Decimal("0.1")),
        ("tb-ledger-model", date(2026, 3, 1), date(2026, 6, 1), Decimal("1")),
        ("tb-ledger-model", date(2026, 6, 1), None, Decimal("2")),
    ]


def test_each_call_priced_at_its_date_or_marked_earliest_known(history):
    both = history["both"]
    # 1M in + 0.5M out: A = 1 + 2 = $3.00; B = 2 + 4 = $6.00
    assert both["hist-before"][:2] == (Decimal("3.000000000"), "earliest_known")
    assert both["hist-before"][2] == "openai/tb-ledger-model@2026-03-01"
    assert both["hist-mid"][:2] == (Decimal("3.000000000"), "in_force")
    assert both["hist-after"][:2] == (Decimal("6.000000000"), "in_force")
    assert both["mini-before"][:2] == (Decimal("0.150000000"), "in_force")
    assert both["mini-after"][:2] == (Decimal("0.100000000"), "in_force")
    # before A was known, B was the earliest version: every older call carried B's price
    only_b = history["only_b"]
    assert only_b["hist-before"][:2] == (Decimal("6.000000000"), "earliest_known")
    assert only_b["hist-mid"][:2] == (Decimal("6.000000000"), "earliest_known")


def test_next_transform_reprices_exactly_the_touched_calls(history):
    assert history["invocations"] == 1  # the first build was full; the second incremental
    # the call dates of the two repriced models; the other provider's day is left alone
    assert history["rebuilt"] == [
        date(2026, 2, 10),
        date(2026, 3, 5),
        date(2026, 4, 15),
        date(2026, 6, 1),
    ]
    assert history["both"]["other-model"] == history["only_b"]["other-model"]


def test_mart_shows_the_spend_priced_with_an_earliest_known_price(history):
    february = [r for r in history["basis"] if r[0] == date(2026, 2, 1)]
    assert ("tb-ledger-model", "earliest_known", 1, Decimal("3.000000000")) in [
        r[1:] for r in february
    ]
    assert ("gpt-4o-mini", "in_force", 1, Decimal("0.150000000")) in [r[1:] for r in february]
    assert not any(r[2] == "earliest_known" for r in history["basis"] if r[0] != date(2026, 2, 1))
