"""Test environment: every test runs offline, on temporary warehouses, with Airflow and dbt
kept out of the home folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="tokenbook-tests-"))
os.environ.setdefault("AIRFLOW_HOME", str(_SESSION_TMP / "airflow"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# Airflow reads its configuration once, at first import, whichever test imports it first
# (the billing key lookup does): the DAGs folder must be right from the start.
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parent.parent / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PARALLELISM", "4")
os.environ.setdefault("AIRFLOW__API__HOST", "127.0.0.1")
os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
# Tests never read the developer's own settings.
for _k in list(os.environ):
    if _k.startswith("TOKENBOOK_"):
        del os.environ[_k]
# The tests' ids are invented: they opt in to the public development PII key explicitly
# (outside the demo and the tests, every pseudonymising path refuses it). A test of the
# refusal removes this from its own environment.
os.environ["TOKENBOOK_ALLOW_DEV_KEY"] = "1"

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def tmp_warehouse(tmp_path: Path) -> str:
    """A fresh DuckDB warehouse URL in a temporary folder."""
    return f"duckdb:///{tmp_path / 'wh' / 'tokenbook.duckdb'}"


# ---------------------------------------------------------------------------------------------
# Expensive builds that several modules need IDENTICALLY: built once per session, then each
# module gets its own copy (a module that writes to its warehouse never changes another's).


@pytest.fixture(scope="session")
def marts_warehouse_built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """tests/test_marts.py's warehouse (the generated and hand-worked calls, the cost marts
    built with their tests), built once: test_marts and test_export read the same build."""
    from test_marts import build_marts_warehouse

    root = tmp_path_factory.mktemp("marts-built")
    return root, build_marts_warehouse(root)


@pytest.fixture(scope="session")
def bigquery_compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole dbt project compiled for the BigQuery target offline (dummy service-account
    key, --no-populate-cache), once: the manifest.json path. A model's compiled SQL does not
    depend on what else was selected, so the modules that check some models' BigQuery SQL
    read them here instead of compiling again."""
    from test_bigquery_compile import _dummy_key

    from core.settings import load_settings
    from tokenbook.dbt import run_dbt

    base = tmp_path_factory.mktemp("bq_compile")
    key = base / "key.json"
    _dummy_key(key)
    settings = load_settings(warehouse="bigquery://orbit-finops/tokenbook", bq_keyfile=str(key))
    run_dbt(["compile", "--no-populate-cache"], settings, target_path=base)
    return base / "target" / "manifest.json"


@pytest.fixture(scope="session")
def bigquery_parsed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`dbt parse` for the BigQuery target with no credentials at all, once (what
    tokenbook.semantic.parse_semantic_manifest runs): the target folder, holding manifest.json
    and semantic_manifest.json."""
    from core.settings import load_settings
    from tokenbook.semantic import parse_semantic_manifest

    base = tmp_path_factory.mktemp("bq_parse")
    settings = load_settings(warehouse="bigquery://orbit-finops/tokenbook")
    parse_semantic_manifest(settings, target_path=base)
    return base / "target"
