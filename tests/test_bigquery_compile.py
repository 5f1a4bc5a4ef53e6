"""The same dbt project compiles for BigQuery offline, and every compiled model parses as
BigQuery SQL (sqlglot: a smoke check, it is lenient). BigQuery itself is never reached: a
dummy service-account key with a real RSA key and `--no-populate-cache` (STACK_NOTES.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlglot

from tokenbook.dbt import run_dbt
from tokenbook.settings import load_settings


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
                "project_id": "acme-finops",
                "private_key_id": "0" * 40,
                "private_key": pem,
                "client_email": "tokenbook@acme-finops.iam.gserviceaccount.com",
                "client_id": "1",
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("bq_compile")
    key = base / "key.json"
    _dummy_key(key)
    settings = load_settings(warehouse="bigquery://acme-finops/tokenbook", bq_keyfile=str(key))
    run_dbt(["compile", "--no-populate-cache"], settings, target_path=base)
    manifest = json.loads((base / "target" / "manifest.json").read_text())
    return {"manifest": manifest, "base": base}


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
    assert fct["config"]["incremental_strategy"] == "merge"
    assert fct["config"]["contract"]["enforced"] is True
    assert fct["columns"]["list_cost_usd"]["data_type"] == "numeric"
    stg = _model(manifest, "stg_gateway__calls")
    assert stg["schema"] == "tokenbook_staging"
    assert "`acme-finops`.`tokenbook_raw`.`gateway_calls`" in stg["compiled_code"]
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


def test_parse_needs_no_credentials(tmp_path: Path):
    settings = load_settings(warehouse="bigquery://acme-finops/tokenbook")
    run_dbt(["parse"], settings, target_path=tmp_path)
    assert (tmp_path / "target" / "manifest.json").exists()
