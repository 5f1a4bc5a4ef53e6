"""The price book's Python side: exact conversion of the LiteLLM map, the shipped snapshot
and seed agree, and `prices load` appends versions without rewriting history."""

from __future__ import annotations

import csv
import gzip
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from core.warehouse import connect_duckdb, parse_warehouse
from tokenbook.pricing.default import SEED_PATH, SNAPSHOT_PATH, default_rows
from tokenbook.pricing.litellm import (
    COLUMNS,
    PriceMapError,
    catalogue_model,
    format_value,
    load_price_map,
    to_price_rows,
)
from tokenbook.pricing.versions import PriceBookError, diff_book, load_prices

MAP = {
    "gpt-4o": {
        "litellm_provider": "openai",
        "mode": "chat",
        "input_cost_per_token": Decimal("2.5E-6"),
        "output_cost_per_token": Decimal("0.00001"),
        "cache_read_input_token_cost": Decimal("1.25e-06"),
        "input_cost_per_token_priority": Decimal("4.25e-06"),
    },
    "gemini-2.5-pro": {
        "litellm_provider": "vertex_ai-language-models",
        "mode": "chat",
        "input_cost_per_token": Decimal("1.25e-06"),
        "output_cost_per_token": Decimal("1e-05"),
        "input_cost_per_token_above_200k_tokens": Decimal("2.5e-06"),
        "output_cost_per_token_above_200k_tokens": Decimal("1.5e-05"),
    },
    "gemini/gemini-2.5-pro": {  # Google AI Studio: its own provider, apart from Vertex AI
        "litellm_provider": "gemini",
        "mode": "chat",
        "input_cost_per_token": Decimal("9e-06"),
        "output_cost_per_token": Decimal("9e-05"),
    },
    "bedrock/us-east-1/1-month-commitment/anthropic.claude-v1": {
        "litellm_provider": "bedrock",
        "mode": "chat",
        "input_cost_per_token": Decimal("1e-06"),
        "output_cost_per_token": Decimal("1e-06"),
    },
    "text-embedding-3-small": {
        "litellm_provider": "openai",
        "mode": "embedding",
        "input_cost_per_token": Decimal("2e-08"),
        "output_cost_per_token": Decimal("0"),
    },
    "mistral/mistral-large": {
        "litellm_provider": "mistral",
        "mode": "chat",
        "input_cost_per_token": Decimal("2e-06"),
        "output_cost_per_token": Decimal("6e-06"),
    },
    "sample_spec": {"litellm_provider": "one of https://docs.litellm.ai/docs/providers"},
}


def test_conversion_is_exact_per_million_and_filtered():
    rows = {(r["provider"], r["model"]): r for r in to_price_rows(MAP, "test")}
    # every provider and every mode billed per token (issue 15); regional variants left out
    assert set(rows) == {("openai", "gpt-4o"), ("vertex_ai", "gemini-2.5-pro"),
                         ("gemini", "gemini-2.5-pro"), ("openai", "text-embedding-3-small"),
                         ("mistral", "mistral-large")}
    assert rows[("gemini", "gemini-2.5-pro")]["input_per_mtok"] == Decimal("9")
    assert rows[("mistral", "mistral-large")]["output_per_mtok"] == Decimal("6")
    assert rows[("openai", "text-embedding-3-small")]["input_per_mtok"] == Decimal("0.02")
    gpt = rows[("openai", "gpt-4o")]
    assert gpt["input_per_mtok"] == Decimal("2.5")
    assert gpt["cache_read_per_mtok"] == Decimal("1.25")
    assert gpt["priority_input_per_mtok"] == Decimal("4.25")
    assert gpt["batch_input_per_mtok"] is None  # absent in the map: SQL applies 50%
    gem = rows[("vertex_ai", "gemini-2.5-pro")]
    assert gem["litellm_key"] == "gemini-2.5-pro"  # Vertex's own listing, not AI Studio's
    assert gem["tier_threshold_tokens"] == 200_000
    assert (gem["tier_input_per_mtok"], gem["tier_output_per_mtok"]) == (
        Decimal("2.5"),
        Decimal("15"),
    )
    assert format_value(Decimal("0.0625")) == "0.0625"


def test_a_price_that_does_not_fit_nine_decimals_is_refused():
    bad = {"m": {**MAP["gpt-4o"], "input_cost_per_token": Decimal("1.2345678901e-06")}}
    with pytest.raises(PriceMapError, match="more than 9 decimals"):
        to_price_rows(bad, "test")


def test_load_price_map_reads_floats_as_exact_decimals(tmp_path: Path):
    path = tmp_path / "map.json"
    path.write_text(
        '{"gpt-4o": {"litellm_provider": "openai", "mode": "chat", '
        '"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05}}'
    )
    data = load_price_map(path)
    assert data["gpt-4o"]["input_cost_per_token"] == Decimal("0.0000025")
    (tmp_path / "bad.json").write_text('{"x": 1}')
    with pytest.raises(PriceMapError, match="litellm_provider"):
        load_price_map(tmp_path / "bad.json")
    with pytest.raises(PriceMapError, match="does not exist"):
        load_price_map(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("key", "model"),
    [
        ("azure/gpt-4o", "gpt-4o"),
        ("vertex_ai/claude-sonnet-4-5@20250929", "claude-sonnet-4-5@20250929"),
        (
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        ),
        ("azure/eu/gpt-4o", None),
        ("bedrock/us-east-1/anthropic.claude-v1", None),
    ],
)
def test_catalogue_keys(key: str, model: str | None):
    assert catalogue_model(key) == model


def test_shipped_seed_is_generated_from_shipped_snapshot():
    with open(SEED_PATH, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        seed = [dict(zip(header, r, strict=True)) for r in reader]
    assert tuple(header) == COLUMNS
    expected = [{c: format_value(r.get(c)) for c in COLUMNS} for r in default_rows()]
    assert seed == expected
    providers = {r["provider"] for r in seed}
    # every provider of the map billed per token, Google AI Studio apart from Vertex AI
    assert {"openai", "anthropic", "vertex_ai", "gemini", "bedrock", "azure_openai", "mistral",
            "cohere", "deepseek", "xai", "groq", "together_ai", "fireworks_ai",
            "perplexity"} <= providers
    assert len(providers) >= 100 and len(seed) > 3000
    by_key = {(r["provider"], r["model"]): r for r in seed}
    # published list prices (USD per 1M tokens)
    assert by_key[("anthropic", "claude-sonnet-4-5")]["cache_write_1h_per_mtok"] == "6"
    assert by_key[("openai", "gpt-4o")]["input_per_mtok"] == "2.5"
    assert (SNAPSHOT_PATH.parent / "LICENSE").exists()
    assert (SNAPSHOT_PATH.parent / "README.md").exists()


def _book_row(provider: str, model: str, valid_from: str, input_price: str) -> dict:
    row = {c: None for c in COLUMNS}
    row.update(
        provider=provider,
        model=model,
        valid_from=valid_from,
        input_per_mtok=Decimal(input_price),
        output_per_mtok=Decimal("10"),
    )
    return row


def test_diff_appends_only_changes_and_refuses_to_rewrite_history():
    current = [
        _book_row("openai", "gpt-4o", "2000-01-01", "5"),
        _book_row("openai", "gpt-4o", "2025-06-01", "2.5"),
        _book_row("openai", "gpt-4.1", "2000-01-01", "2"),
    ]
    incoming = [
        _book_row("openai", "gpt-4o", "x", "2.50"),  # same as the latest version
        _book_row("openai", "gpt-4.1", "x", "1.8"),  # changed
        _book_row("openai", "gpt-5", "x", "1.25"),  # new
    ]
    rows, result = diff_book(current, incoming, date(2026, 1, 1), "v1")
    assert [(r["model"], r["valid_from"]) for r in rows] == [
        ("gpt-4.1", date(2026, 1, 1)),
        ("gpt-5", date(2026, 1, 1)),
    ]
    assert (result.changed_models, result.new_models, result.unchanged_models) == (1, 1, 1)
    incoming[0]["input_per_mtok"] = Decimal("2")
    with pytest.raises(PriceBookError, match="never overwritten"):
        diff_book(current, incoming, date(2025, 6, 1), "v2")
    # an older snapshot slots in between: compared with the version in force on its date
    # (gpt-4o at $5 from 2000), not with the latest
    older = [_book_row("openai", "gpt-4o", "x", "2.5"), _book_row("openai", "gpt-4.1", "x", "2")]
    rows, result = diff_book(current, older, date(2025, 1, 1), "v0")
    assert [(r["model"], r["valid_from"]) for r in rows] == [("gpt-4o", date(2025, 1, 1))]
    assert (result.changed_models, result.unchanged_models) == (1, 1)


def test_prices_load_appends_versions_to_duckdb(tmp_path: Path):
    with gzip.open(SNAPSHOT_PATH, "rt", encoding="utf-8") as fh:
        snapshot = json.load(fh, parse_float=Decimal)
    snapshot["claude-haiku-4-5"]["output_cost_per_token"] = Decimal("4e-06")
    newer = tmp_path / "prices.json"
    newer.write_text(json.dumps(snapshot, default=float), encoding="utf-8")
    wh = parse_warehouse(f"duckdb:///{tmp_path / 'wh.duckdb'}")
    first = load_prices(newer, wh, date(2026, 2, 1))
    assert (first.changed_models, first.new_models, first.appended) == (1, 0, 1)
    snapshot["claude-haiku-4-5"]["output_cost_per_token"] = Decimal("3e-06")
    newer.write_text(json.dumps(snapshot, default=float), encoding="utf-8")
    second = load_prices(newer, wh, date(2026, 3, 1))
    assert second.changed_models == 1
    con = connect_duckdb(wh)
    rows = con.execute(
        "select valid_from, output_per_mtok, typeof(output_per_mtok) "
        "from raw.price_book_versions order by valid_from"
    ).fetchall()
    con.close()
    assert rows == [
        (date(2026, 2, 1), Decimal("4"), "DECIMAL(38,9)"),
        (date(2026, 3, 1), Decimal("3"), "DECIMAL(38,9)"),
    ]


class _FakeJob:
    def result(self):
        return []


class _FakeBigQuery:
    """Records what the BigQuery path sends (BigQuery cannot be reached from the tests)."""

    def __init__(self):
        self.created, self.queries, self.loads = [], [], []

    def create_table(self, table, exists_ok=False):
        self.created.append((f"{table.project}.{table.dataset_id}.{table.table_id}", exists_ok))

    def query(self, sql):
        self.queries.append(sql)
        return _FakeJob()

    def load_table_from_file(self, fh, table_id, job_config=None):
        import pyarrow.parquet as pq

        self.loads.append((table_id, job_config, pq.read_table(fh)))
        return _FakeJob()


def test_prices_load_bigquery_appends_with_a_load_job(tmp_path: Path):
    from google.cloud import bigquery

    newer = tmp_path / "prices.json"
    newer.write_text(
        json.dumps(
            {
                "gpt-test": {
                    **{
                        k: float(v) if isinstance(v, Decimal) else v
                        for k, v in MAP["gpt-4o"].items()
                    }
                }
            }
        )
    )
    client = _FakeBigQuery()
    wh = parse_warehouse("bigquery://orbit-finops/tokenbook")
    result = load_prices(newer, wh, date(2026, 4, 1), client=client)
    assert result.new_models == 1
    assert client.created == [("orbit-finops.tokenbook_raw.price_book_versions", True)]
    assert "`orbit-finops.tokenbook_raw.price_book_versions`" in client.queries[0]
    table_id, config, table = client.loads[0]
    assert table_id == "orbit-finops.tokenbook_raw.price_book_versions"
    assert config.write_disposition == bigquery.WriteDisposition.WRITE_APPEND
    assert config.source_format == bigquery.SourceFormat.PARQUET
    assert {f.name: f.field_type for f in config.schema}["input_per_mtok"] == "NUMERIC"
    assert table.column("input_per_mtok").to_pylist() == [Decimal("2.5")]
    assert str(table.schema.field("input_per_mtok").type) == "decimal128(38, 9)"


def test_cli_prices_load_reports_and_rejects_rewrites(tmp_path: Path):
    from typer.testing import CliRunner

    from tokenbook.cli import app

    newer = tmp_path / "prices.json"
    newer.write_text(
        json.dumps(
            {
                "gpt-4o": {
                    **{
                        k: float(v) if isinstance(v, Decimal) else v
                        for k, v in MAP["gpt-4o"].items()
                    },
                    "input_cost_per_token": 2e-06,
                }
            }
        )
    )
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    runner = CliRunner()
    ok = runner.invoke(
        app, ["prices", "load", str(newer), "--valid-from", "2026-05-01", "--warehouse", url]
    )
    assert ok.exit_code == 0, ok.output
    assert "1 changed, 0 new" in ok.output and "1 rows appended" in ok.output
    newer.write_text(newer.read_text().replace("2e-06", "1.5e-06"))
    older = runner.invoke(
        app, ["prices", "load", str(newer), "--effective-from", "2026-04-01", "--warehouse", url]
    )
    assert older.exit_code == 0, older.output  # history before the 2026-05-01 version
    assert "1 changed, 0 new" in older.output
    bad = runner.invoke(
        app, ["prices", "load", str(newer), "--effective-from", "2026-05-01", "--warehouse", url]
    )
    assert bad.exit_code == 1
    assert "never overwritten" in bad.output
    missing = runner.invoke(
        app, ["prices", "load", str(tmp_path / "nope.json"), "--warehouse", url]
    )
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_dbt_failure_message_names_failed_nodes():
    from types import SimpleNamespace

    from tokenbook.dbt import _failure_message

    def res(uid: str, status: str, message: str):
        return SimpleNamespace(node=SimpleNamespace(unique_id=uid), status=status, message=message)

    result = SimpleNamespace(
        result=SimpleNamespace(
            results=[
                res("model.tokenbook.fct_llm_calls", "error", "Binder Error:\n column x"),
                res("test.tokenbook.unique_fct_llm_calls_call_id", "fail", "Got 2 results"),
                res("model.tokenbook.stg_gateway__calls", "success", "OK"),
            ]
        ),
        exception=None,
    )
    message = _failure_message(["build"], result)
    assert message.startswith("dbt build failed (2 node(s)):")
    assert "model.tokenbook.fct_llm_calls: Binder Error: column x" in message
    assert "unique_fct_llm_calls_call_id: Got 2 results" in message
    assert "stg_gateway__calls" not in message
