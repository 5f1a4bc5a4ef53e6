"""Test environment: every test runs offline, on temporary warehouses, with Airflow and dbt
kept out of the home folder and out of the repository.

Each test process has its own temporary folder (_SESSION_TMP): under pytest-xdist (`make test`
runs two workers) each worker gets its own Airflow home (SQLite metadata DB) and its own dbt
target/ and logs/ (TOKENBOOK_DBT_TARGET_PATH, which `tokenbook metrics` also follows), so one
worker's dbt run never overwrites the manifest or the semantic manifest another is reading."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")  # gw0, gw1 under pytest-xdist
_SESSION_TMP = Path(tempfile.mkdtemp(prefix=f"tokenbook-tests-{_WORKER}-"))
# never the developer's Airflow home, nor one shared by two workers
os.environ["AIRFLOW_HOME"] = str(_SESSION_TMP / "airflow")
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
# dbt's target/ and logs/ (and the project folder `mf` reads) of every dbt call that names no
# target path of its own: this process's, never dbt_project/target nor out/logs in the repo.
os.environ["TOKENBOOK_DBT_TARGET_PATH"] = str(_SESSION_TMP / "dbt")

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


# ---------------------------------------------------------------------------------------------
# Two workers (`make test`: pytest-xdist, -n 2 --dist loadfile --no-loadscope-reorder). A module
# runs on one worker, so its module fixtures are built once; the modules that read one of the
# session builds above (or test_reconciliation.demo_warehouse) go to the same worker, so that
# build is made once, not once per worker. The queue starts with the longest, so both workers
# finish at about the same time. (xdist's own --dist loadgroup cannot do this here: it renames
# test ids, which pytest 9.2 no longer lets a plugin do.)

_SHARED_BUILD_GROUPS = {
    # bigquery_compiled, bigquery_parsed, demo_warehouse(7)
    "test_bigquery_compile.py": "bigquery-compile-demo7",
    "test_levers.py": "bigquery-compile-demo7",
    "test_economics.py": "bigquery-compile-demo7",
    "test_semantic_layer.py": "bigquery-compile-demo7",
    "test_focus.py": "bigquery-compile-demo7",
    "test_reconciliation.py": "bigquery-compile-demo7",
    # marts_warehouse_built
    "test_marts.py": "marts-warehouse",
    "test_export.py": "marts-warehouse",
}
# Seconds per module on one process (682 passed in 805 s, 2026-12-07); a module not listed
# counts 5 s. Only the order of the queue depends on these: a wrong figure costs balance, never
# a result.
_MODULE_SECONDS = {
    "test_restatement.py": 105, "test_main_job.py": 69, "test_dags.py": 60,
    "test_org_config.py": 59, "test_economics.py": 51, "test_bigquery_compile.py": 51,
    "test_levers.py": 37, "test_focus.py": 34, "test_report.py": 33, "test_short_history.py": 29,
    "test_currency.py": 20, "test_semantic_layer.py": 20, "test_quality_suites.py": 17,
    "test_reconciliation.py": 16, "test_anomalies.py": 15, "test_forecasting.py": 14,
    "test_user_mistakes.py": 14, "test_dbt_build.py": 13, "test_price_history.py": 12,
    "test_billing_loader.py": 12, "test_export.py": 11, "test_dbt_data_tests.py": 11,
    "test_ingest_gateway.py": 10, "test_billing_extract.py": 10, "test_monthly_forecast.py": 10,
}


def _group(module_path: str) -> str:
    """The work unit a test module belongs to: its shared-build group, or the module itself."""
    return _SHARED_BUILD_GROUPS.get(Path(module_path).name, module_path)


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """--dist loadfile, with the modules of one shared build in one work unit."""
    if config.getoption("dist") != "loadfile":
        return None  # xdist's own scheduler
    from xdist.scheduler import LoadFileScheduling

    class SharedBuildScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid.split("::", 1)[0])

    return SharedBuildScheduling(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, the work units longest first (the workers' collection order is the queue's
    order with --no-loadscope-reorder); one process keeps the usual order."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    seconds: dict[str, int] = {}
    for module in {item.nodeid.split("::", 1)[0] for item in items}:
        group = _group(module)
        seconds[group] = seconds.get(group, 0) + _MODULE_SECONDS.get(Path(module).name, 5)

    def rank(item: pytest.Item) -> tuple[int, str]:
        group = _group(item.nodeid.split("::", 1)[0])
        return -seconds[group], group

    items.sort(key=rank)  # stable: a module's tests keep their order
