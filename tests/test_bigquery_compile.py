"""The same dbt project compiles for BigQuery offline, and every compiled model parses as
BigQuery SQL (sqlglot: a smoke check, it is lenient). BigQuery itself is never reached: a
dummy service-account key with a real RSA key and `--no-populate-cache` (STACK_NOTES.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlglot

from core.settings import load_settings
from tokenbook.dbt import run_dbt


def _dummy_key(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "orbit-finops",
                "private_key_id": "0" * 40,
                "private_key": pem,
                "client_email": "tokenbook@orbit-finops.iam.gserviceaccount.com",
                "client_id": "1",
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )


@pytest.fixture(scope="module")
def compiled(bigquery_compiled: Path) -> dict:
    # the whole project compiled for BigQuery (tests/conftest.py, once per session)
    return {"manifest": json.loads(bigquery_compiled.read_text())}


def _model(manifest: dict, name: str) -> dict:
    return manifest["nodes"][f"model.tokenbook.{name}"]


def test_every_compiled_model_parses_as_bigquery(compiled):
    models = [n for n in compiled["manifest"]["nodes"].values() if n["resource_type"] == "model"]
    assert len(models) >= 8
    for node in models:
        sql = node.get("compiled_code")
        assert sql, f"{node['unique_id']} was not compiled"
        sqlglot.parse_one(sql, read="bigquery")


def test_bigquery_dialect_and_datasets(compiled):
    manifest = compiled["manifest"]
    fct = _model(manifest, "fct_llm_calls")
    assert fct["schema"] == "tokenbook_marts"
    assert fct["config"]["partition_by"] == {
        "field": "call_date",
        "data_type": "date",
        "granularity": "day",
    }
    assert fct["config"]["cluster_by"] == ["feature"]
    # restated partitions are overwritten whole (tests/test_restatement.py on DuckDB)
    assert fct["config"]["incremental_strategy"] == "insert_overwrite"
    assert fct["config"]["contract"]["enforced"] is True
    assert fct["columns"]["list_cost_usd"]["data_type"] == "numeric"
    stg = _model(manifest, "stg_gateway__calls")
    assert stg["schema"] == "tokenbook_staging"
    assert "`orbit-finops`.`tokenbook_raw`.`gateway_calls`" in stg["compiled_code"]
    priced = _model(manifest, "int_llm_calls_priced")["compiled_code"]
    # ISO weeks start Monday on BigQuery too; money stays NUMERIC (no float division)
    assert "isoweek" in priced and "numeric '0.000001'" in priced
    resolution = _model(manifest, "int_model_resolution")["compiled_code"]
    assert "regexp_replace(" in resolution and "r'" in resolution
    seeds = [n for n in manifest["nodes"].values() if n["resource_type"] == "seed"]
    assert {s["schema"] for s in seeds} == {"tokenbook_staging"}
    sources = manifest["sources"]
    assert sources["source.tokenbook.gateway.gateway_calls"]["schema"] == "tokenbook_raw"
    assert sources["source.tokenbook.forecasts.forecast_daily"]["schema"] == "tokenbook_marts"


def test_parse_needs_no_credentials(bigquery_parsed: Path):
    # `dbt parse` of the bigquery target with no key file (tests/conftest.py, once per session)
    manifest = json.loads((bigquery_parsed / "manifest.json").read_text())
    assert manifest["nodes"]["model.tokenbook.fct_llm_calls"]["schema"] == "tokenbook_marts"


REBUILT = ["2026-08-26", "2026-09-30"]


@pytest.fixture(scope="module")
def incremental(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The incremental branch, as it runs every night: the model compiled with the var that
    forces it offline, then the statements around it rendered by `incremental_statements`
    (dbt-bigquery's own insert_overwrite macro with the model's config and columns)."""
    base = tmp_path_factory.mktemp("bq_incremental")
    key = base / "key.json"
    _dummy_key(key)
    settings = load_settings(warehouse="bigquery://orbit-finops/tokenbook", bq_keyfile=str(key))
    forced = {"compile_incremental": True, "compile_incremental_dates": REBUILT}
    run_dbt(
        ["compile", "--no-populate-cache", "--select", "fct_llm_calls", "--vars", json.dumps(forced)],
        settings,
        target_path=base,
    )
    manifest = json.loads((base / "target" / "manifest.json").read_text())
    sql = _model(manifest, "fct_llm_calls")["compiled_code"]
    run_dbt(
        [
            "run-operation",
            "incremental_statements",
            "--no-populate-cache",
            "--args",
            json.dumps({"model": "fct_llm_calls", "sql": sql}),
        ],
        settings,
        target_path=base,
    )
    log = (base / "logs" / "dbt.log").read_text()
    statements = [
        part.split("-- tokenbook statement end")[0].strip()
        for part in log.split("-- tokenbook statement begin")[1:]
    ]
    return {"sql": sql, "statements": statements}


def test_incremental_branch_compiles_for_bigquery(incremental):
    sql = incremental["sql"]
    wanted = "call_date in (cast('2026-08-26' as date), cast('2026-09-30' as date))"
    # the rebuilt dates are constants (partition pruning) on the priced calls and the versions
    assert sql.count(wanted) == 2
    sqlglot.parse_one(sql, read="bigquery")


def test_incremental_statements_overwrite_the_rebuilt_partitions(incremental):
    claim, dates, rebuilt, delete, overwrite, built = incremental["statements"]
    for statement in (claim, dates, rebuilt, delete, built):
        sqlglot.parse_one(statement, read="bigquery")
    # the partition overwrite script: every statement parses; the MERGE deletes exactly the
    # partitions the rebuilt rows hold and inserts them
    parsed = [p for p in sqlglot.parse(overwrite, read="bigquery") if p is not None]
    merges = [p for p in parsed if isinstance(p, sqlglot.exp.Merge)]
    assert len(merges) == 1
    merge = merges[0]
    assert merge.this.sql("bigquery") == (
        "`orbit-finops`.`tokenbook_marts`.`fct_llm_calls` AS DBT_INTERNAL_DEST"
    )
    delete_when, insert_when = merge.args["whens"].expressions
    assert not delete_when.args.get("matched") and delete_when.args.get("source")
    assert isinstance(delete_when.args["condition"].args.get("unnest"), sqlglot.exp.Unnest)
    assert "UNNEST(dbt_partitions_for_replacement)" in delete_when.sql("bigquery")
    assert delete_when.args["then"].sql().lower() == "delete"
    assert not insert_when.args.get("matched") and isinstance(
        insert_when.args["then"], sqlglot.exp.Insert
    )
    # the partitions replaced are those of the temp table the model's SQL filled
    assert "array_agg(distinct date(call_date) IGNORE NULLS)" in overwrite
    # before it, the pre-hook empties the claimed partitions (a day restated to nothing)
    assert delete.startswith("delete from `orbit-finops`.`tokenbook_marts`.`fct_llm_calls`")
    assert "`orbit-finops`.`tokenbook_raw`.`incremental_partitions`" in delete
    assert "`orbit-finops`.`tokenbook_raw`.`load_audit`" in claim
    assert "`orbit-finops`.`tokenbook_staging`.`stg_gateway__calls`" in dates
