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
