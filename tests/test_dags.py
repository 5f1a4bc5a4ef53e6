"""The nightly Airflow DAG: integrity (DagBag), cheap parsing, and real runs with dag.test().

Runs for real: Airflow 3 (SQLite metadata DB in the session's AIRFLOW_HOME), astronomer-cosmos
with dbtRunner, dbt-duckdb, the gateway ingestion pipeline, on a temporary DuckDB warehouse.
Timings measured here are printed with ``-s``.
"""

from __future__ import annotations

import builtins
import json
import os
import socket
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from core.settings import load_settings
from core.warehouse import Warehouse
from tokenbook import orchestration as orch

REPO = Path(__file__).resolve().parent.parent
DAGS = REPO / "dags"
DAG_ID = "tokenbook_nightly"
RUN_DAY = date(2026, 11, 25)  # a Wednesday: no forecast refit
FAIL_DAY = date(2026, 11, 26)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def nightly(tmp_path_factory):
    """Environment the DAG parses and runs with, a warehouse, the day's file, the manifest."""
    from tokenbook.demo import generate_with_billing

    base = tmp_path_factory.mktemp("nightly")
    t0 = time.perf_counter()
    demo = generate_with_billing(base / "demo", days=21, end=RUN_DAY + timedelta(days=2), scale=0.01)
    demo_s = time.perf_counter() - t0
    gateway = base / "demo" / "gateway"
    warehouse = f"duckdb:///{base / 'wh' / 'tokenbook.duckdb'}"
    t0 = time.perf_counter()
    manifest = orch.write_dbt_manifest(load_settings(warehouse=warehouse), base / "dbt")
    parse_s = time.perf_counter() - t0
    env = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "TOKENBOOK_WAREHOUSE": warehouse,
        # the demo organisation's own configuration folder (written by the generator)
        "TOKENBOOK_CONFIG_DIR": str(base / "demo" / "config"),
        orch.ENV_GATEWAY_PATH: str(gateway),
        orch.ENV_BILLING_PATH: str(base / "demo" / "billing"),
        orch.ENV_OUT_DIR: str(base / "out"),
        orch.ENV_DBT_MANIFEST: str(manifest),
        # Builds fct_llm_calls and the models and seeds it needs, each with its own tests:
        # the slice the assertions read (tests across several models need the whole project).
        orch.ENV_DBT_SELECT: "+fct_llm_calls +mart_chargeback",
        # The report and FOCUS read marts outside that slice (their own tests build them).
        orch.ENV_PUBLISH: "chargeback",
        "TOKENBOOK_DAG_RETRIES": "1",
        "TOKENBOOK_DAG_RETRY_DELAY_SECONDS": "0",
        "TOKENBOOK_DAG_START": "2026-11-01",
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        from airflow.utils import db

        t0 = time.perf_counter()
        db.initdb()
        print(
            f"\n[timing] airflow initdb {time.perf_counter() - t0:.1f}s, dbt parse {parse_s:.1f}s, "
            f"demo (21 days, scale 0.01) {demo_s:.1f}s"
        )
        day = next(f for f in demo["files"] if f["date"] == RUN_DAY.isoformat())
        yield {
            "base": base,
            "warehouse": warehouse,
            "manifest": manifest,
            "gateway": gateway,
            "billing": base / "demo" / "billing",
            "day": day,
        }


@pytest.fixture(scope="module")
def dagbag(nightly):
    from airflow.dag_processing.dagbag import DagBag

    t0 = time.perf_counter()
    bag = DagBag(dag_folder=str(DAGS))
    print(f"\n[timing] DagBag of dags/ {time.perf_counter() - t0:.2f}s")
    return bag


@pytest.fixture(scope="module")
def dag(dagbag):
    return dagbag.dags[DAG_ID]


def _wh_path(nightly) -> str:
    return nightly["warehouse"][len("duckdb:///") :]


def _query(nightly, sql: str, params=None):
    # Same configuration as dbt-duckdb's connection, which stays open in this process.
    con = duckdb.connect(_wh_path(nightly))
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _logical_date_for(day: date) -> datetime:
    """A manual run covers the last complete day before its logical date (data intervals)."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


def _states(run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


# --------------------------------------------------------------------------- integrity


def test_dagbag_has_no_import_errors_and_the_nightly_dag(dagbag):
    assert dagbag.import_errors == {}
    assert DAG_ID in dagbag.dags


def test_replace_is_off_by_default_and_a_refused_load_fails_without_retry(dag):
    """Issue 21: the DAG never confirms a shrinking load by itself; a refusal fails the task
    at once (the same file would be refused again)."""
    import importlib.util

    from airflow.sdk.exceptions import AirflowFailException

    from ingestion.raw.guard import LoadRefused, Shrink

    assert dag.params.get_param("replace").value is False
    spec = importlib.util.spec_from_file_location("nightly_for_test", DAGS / "tokenbook_nightly.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def refused(*args, **kwargs):
        raise LoadRefused([Shrink("gateway 2026-11-25", 3000, 0)])

    with pytest.raises(AirflowFailException, match="holds 3,000 rows and the load offers 0"):
        module._run_step(refused, RUN_DAY)


def test_a_failed_quality_check_or_invalid_thresholds_fails_without_retry(dag, tmp_path):
    """A retry of data_quality / quality_gate meets the same data and the same thresholds file:
    both fail the task at once (AirflowFailException), with the check's own message."""
    import importlib.util

    from airflow.sdk.exceptions import AirflowFailException

    from ingestion.quality_thresholds import load_thresholds

    spec = importlib.util.spec_from_file_location("nightly_for_test", DAGS / "tokenbook_nightly.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    (tmp_path / "quality_thresholds.csv").write_text("name,value\nvolume_ratio_min,lots\n")

    def invalid_thresholds(*args, **kwargs):
        return load_thresholds(tmp_path)

    with pytest.raises(AirflowFailException, match="volume_ratio_min must be a number"):
        module._run_step(invalid_thresholds, RUN_DAY)

    def failed_gate(*args, **kwargs):
        raise orch.QualityGateFailed("data-quality check failed for 2026-11-25: quarantine_share")

    with pytest.raises(AirflowFailException, match="quarantine_share"):
        module._run_step(failed_gate, RUN_DAY)

    def warehouse_down(*args, **kwargs):  # a transient failure is still retried
        raise ConnectionError("warehouse did not answer")

    with pytest.raises(ConnectionError):
        module._run_step(warehouse_down, RUN_DAY)


def test_dag_is_documented_tagged_and_retries(dag):
    assert dag.doc_md and "tokenbook_nightly" in dag.doc_md
    assert {"tokenbook", "nightly"} <= set(dag.tags)
    # a deployment starts with the last complete day; catchup is asked for (the demo script)
    assert dag.catchup is False
    assert dag.max_active_runs == 1  # DuckDB: one writer, runs in date order
    # The run for day D is scheduled once D is over, and names D as its data interval start.
    from airflow.sdk import CronDataIntervalTimetable
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    nxt = coerce_to_core_timetable(dag.timetable).next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=True),
    )
    assert nxt.data_interval.start.date() == date(2026, 11, 1)
    assert nxt.run_after.date() == date(2026, 11, 2)
    for t in dag.tasks:
        assert t.retries >= 1, t.task_id
        assert t.retry_delay is not None, t.task_id
        assert t.on_failure_callback, t.task_id
        assert t.on_retry_callback, t.task_id


def test_catchup_is_off_unless_asked_and_a_typo_says_so(dag, monkeypatch):
    """A real deployment with the default start date must not run every night since it; the
    demo script asks for catchup; a value that is not a boolean fails the DAG's import with a
    sentence, not a silent default."""

    import importlib.util

    def parse(value: str | None):
        if value is None:
            monkeypatch.delenv("TOKENBOOK_DAG_CATCHUP", raising=False)
        else:
            monkeypatch.setenv("TOKENBOOK_DAG_CATCHUP", value)
        spec = importlib.util.spec_from_file_location("nightly_catchup", DAGS / "tokenbook_nightly.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.dag

    assert parse(None).catchup is False
    assert parse("TRUE").catchup is True
    assert parse("false").catchup is False
    with pytest.raises(ValueError, match="TOKENBOOK_DAG_CATCHUP='sometimes' is not a yes/no value: set it to true"):
        parse("sometimes")


def test_task_order_and_one_task_per_dbt_model(dag, nightly):
    manifest = json.loads(Path(nightly["manifest"]).read_text())
    fct = "model.tokenbook.fct_llm_calls"
    wanted, todo = set(), [fct]
    while todo:  # fct_llm_calls and every model upstream of it (the selection +fct_llm_calls)
        node = todo.pop()
        if node.startswith("model.") and node not in wanted:
            wanted.add(node)
            todo += manifest["parent_map"][node]
    models = {manifest["nodes"][n]["name"] for n in wanted}
    dbt_tasks = {t.task_id for t in dag.tasks if t.task_id.startswith("dbt_models.")}
    rendered = {t.split(".")[1].removesuffix("_model_build") for t in dbt_tasks}
    assert models <= rendered, (models, dbt_tasks)
    ids = {t.task_id: t for t in dag.tasks}
    assert ids["ingest_billing"].upstream_task_ids == {"ingest_gateway"}
    assert ids["data_quality"].upstream_task_ids == {"ingest_billing"}
    assert ids["quality_gate"].upstream_task_ids == {"data_quality"}
    # the organisation's configuration is validated and loaded first (issue 15)
    assert ids["load_config"].upstream_task_ids == set()
    assert ids["ingest_gateway"].upstream_task_ids == {"load_config"}
    first_dbt = {t for t in dbt_tasks if "quality_gate" in ids[t].upstream_task_ids}
    assert first_dbt, "dbt models must wait for the quality gate"
    assert any(u.startswith("dbt_models.") for u in ids["score_anomalies"].upstream_task_ids)
    assert ids["is_refit_day"].upstream_task_ids == {"score_anomalies"}
    assert ids["refit_forecast"].upstream_task_ids == {"is_refit_day"}
    assert ids["after_forecast_models"].upstream_task_ids == {"score_anomalies", "refit_forecast"}
    assert ids["publish_outputs"].upstream_task_ids == {"after_forecast_models"}
    # Models that read the forecasts are not cosmos tasks: they build after the refit.
    after = {n["name"] for n in manifest["nodes"].values()
             if n["resource_type"] == "model" and "after_forecast" in n["tags"]}
    assert after and not (after & rendered), after & rendered
    # The fct task builds the model with its tests, with the run's date as a dbt var.
    fct = next(ids[t] for t in dbt_tasks if "fct_llm_calls" in t)
    assert "run_date" in fct.vars
    # runs in flight never build the same model at once (restatements stay ordered)
    assert fct.max_active_tis_per_dag == 1


def test_parsing_does_no_io_outside_code_and_manifest(nightly, monkeypatch):
    """Parse the DAG file with the warehouse, the network and Variables made to fail, and
    record every file opened: only code, dbt project files and the manifest are allowed."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import Variable

    def refuse(*a, **k):
        raise AssertionError("I/O at DAG parse time")

    opened: list[str] = []
    real_open = builtins.open

    def recording_open(file, *args, **kwargs):
        opened.append(os.fspath(file) if not isinstance(file, int) else str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(duckdb, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(Variable, "get", refuse)
    monkeypatch.setattr(builtins, "open", recording_open)
    t0 = time.perf_counter()
    bag = DagBag(dag_folder=str(DAGS / "tokenbook_nightly.py"))
    elapsed = time.perf_counter() - t0
    monkeypatch.setattr(builtins, "open", real_open)
    print(f"\n[timing] parse of tokenbook_nightly.py {elapsed:.2f}s, files opened: {len(opened)}")
    assert bag.import_errors == {}
    assert DAG_ID in bag.dags
    allowed = (str(REPO), str(Path(nightly["manifest"]).parent), sys.prefix, os.environ["AIRFLOW_HOME"])
    outside = [p for p in opened if not p.startswith(allowed)]
    assert outside == [], outside
    assert elapsed < 10, f"parsing took {elapsed:.1f}s"


def test_missing_manifest_falls_back_to_one_dbt_build_task(nightly, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv(orch.ENV_DBT_MANIFEST, str(nightly["base"] / "nope" / "manifest.json"))
    bag = DagBag(dag_folder=str(DAGS / "tokenbook_nightly.py"))
    assert bag.import_errors == {}
    ids = {t.task_id for t in bag.dags[DAG_ID].tasks}
    assert "dbt_build" in ids
    assert not any(t.startswith("dbt_models.") for t in ids)
    assert bag.dags[DAG_ID].get_task("score_anomalies").upstream_task_ids == {"dbt_build"}


def test_on_bigquery_every_task_uses_the_bigquery_pool(monkeypatch):
    """Parsed for a BigQuery warehouse: the pool bounds concurrent jobs, dbt targets BigQuery."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("TOKENBOOK_WAREHOUSE", "bigquery://orbit-finops/tokenbook")
    bag = DagBag(dag_folder=str(DAGS / "tokenbook_nightly.py"))
    assert bag.import_errors == {}
    dag = bag.dags[DAG_ID]
    assert {t.pool for t in dag.tasks} == {orch.BIGQUERY_POOL}
    assert dag.max_active_runs > 1
    fct = dag.get_task("dbt_models.fct_llm_calls_model_build")
    assert fct.profile_config.target_name == "bigquery"
    assert fct.env["TOKENBOOK_BQ_PROJECT"] == "orbit-finops"


def _all_suites(success=True, load_id="load-1"):
    from ingestion.quality import GATEWAY_SUITES

    return [{"expectation": f"{s}: metric = 0.5", "success": success, "suite": s,
             "load_id": load_id} for s in GATEWAY_SUITES]


def test_quality_gate_on_bigquery_reads_the_stored_checkpoint_results(monkeypatch):
    """On BigQuery the gate reads load_audit and validation_results by query (client
    patched: BigQuery cannot be reached here); a failed expectation fails the gate, and so
    does a dataset without results (zero results is never a pass)."""
    import sqlglot
    from google.api_core.exceptions import NotFound

    audit = {"files": 1, "rows_read": 10, "rows_loaded": 9, "rows_quarantined": 1,
             "rows_duplicate": 0, "failed": 0, "load_id": "load-1"}

    class Client:
        def __init__(self, results):
            self.results, self.sql = results, []

        def query(self, sql, job_config=None):
            self.sql.append(sql)
            params = {p.name: p.value for p in job_config.query_parameters}
            assert params == {"d": RUN_DAY}
            if "validation_results" in sql:
                if self.results is None:
                    raise NotFound("Table orbit-finops:tb_raw.validation_results was not found")
                rows = self.results
            else:
                rows = [audit]
            return type("Job", (), {"result": lambda _self: rows})()

    settings = load_settings(warehouse="bigquery://orbit-finops/tb")
    ok = Client(_all_suites())
    monkeypatch.setattr(Warehouse, "bigquery_client", lambda _self: ok)
    assert orch.check_quality(RUN_DAY, settings)["expectations"] == len(_all_suites())
    assert "`orbit-finops.tb_raw.validation_results`" in ok.sql[1]
    for sql in ok.sql:
        sqlglot.parse_one(sql, read="bigquery")  # BigQuery SQL, at least as sqlglot reads it

    failing = Client(_all_suites() + [{"expectation": "gateway_load: quarantine_share = 0.3",
                                       "success": False, "suite": "gateway_load",
                                       "load_id": "load-1"}])
    monkeypatch.setattr(Warehouse, "bigquery_client", lambda _self: failing)
    with pytest.raises(orch.QualityGateFailed, match="quarantine_share"):
        orch.check_quality(RUN_DAY, settings)

    monkeypatch.setattr(Warehouse, "bigquery_client", lambda _self: Client(None))
    with pytest.raises(orch.QualityGateFailed, match="no data-quality results"):
        orch.check_quality(RUN_DAY, settings)
    # not evaluable (success NULL) is a result, not a failure
    unknown = Client([{**r, "success": None} for r in _all_suites()])
    monkeypatch.setattr(Warehouse, "bigquery_client", lambda _self: unknown)
    assert orch.check_quality(RUN_DAY, settings)["expectations"] == len(_all_suites())
    # results left by a check of an earlier load of the date (the date was reloaded since)
    stale = Client(_all_suites(load_id="load-0"))
    monkeypatch.setattr(Warehouse, "bigquery_client", lambda _self: stale)
    with pytest.raises(orch.QualityGateFailed, match="earlier load"):
        orch.check_quality(RUN_DAY, settings)


# --------------------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def nightly_run(dag, nightly):
    """One real run of the DAG for RUN_DAY (shared: it is the expensive part)."""
    t0 = time.perf_counter()
    run = dag.test(logical_date=_logical_date_for(RUN_DAY))
    assert run.data_interval_start.date() == RUN_DAY
    elapsed = time.perf_counter() - t0
    tis = run.get_task_instances()
    slowest = sorted(((round(ti.duration or 0, 1), ti.task_id) for ti in tis), reverse=True)
    print(f"\n[timing] dag.test() one day {elapsed:.1f}s, {len(tis)} tasks; slowest {slowest[:5]}")
    return run


def test_dag_test_builds_the_day_end_to_end(nightly_run, nightly):
    states = _states(nightly_run)
    assert str(nightly_run.state) == "success", states
    assert states["ingest_gateway"] == "success"
    assert states["ingest_billing"] == "success"
    assert states["data_quality"] == "success"
    assert states["quality_gate"] == "success"
    assert states["load_config"] == "success"
    # the suites ran for the day, each with results (one day of history: most not evaluable)
    suites = {r[0] for r in _query(nightly, "select distinct suite from raw.validation_results "
                                            "where load_date = ?", [RUN_DAY])}
    from ingestion.quality import GATEWAY_SUITES

    assert set(GATEWAY_SUITES) <= suites
    assert states["score_anomalies"] == "success"
    assert states["is_refit_day"] == "success" and states["refit_forecast"] == "skipped"
    assert states["publish_outputs"] == "success"
    dbt_states = {k: v for k, v in states.items() if k.startswith("dbt_models.")}
    assert "dbt_models.fct_llm_calls_model_build" in dbt_states
    assert set(dbt_states.values()) == {"success"}, dbt_states

    # The day's file, as the demo manifest counts it, landed; the ledger holds the same calls.
    loaded, tokens = _query(
        nightly,
        "select count(*), sum(input_tokens) from raw.gateway_calls where load_date = ?",
        [RUN_DAY],
    )[0]
    assert loaded == nightly["day"]["loaded"] > 0
    assert _query(
        nightly, "select count(*) from raw.gateway_calls where load_date <> ?", [RUN_DAY]
    )[0][0] == 0  # only the run's date was loaded
    calls = _query(
        nightly,
        "select count(*), sum(input_tokens), count(*) filter (where feature is null) "
        "from marts.fct_llm_calls where load_date = ?",
        [RUN_DAY],
    )[0]
    assert calls == (loaded, tokens, 0)
    # Billing: the day's API exports (openai, anthropic) and the month's files (aws, azure, gcp).
    billing = dict(
        _query(
            nightly,
            "select vendor || ' ' || load_date, count(*) from raw.billing_lines group by all",
        )
    )
    assert set(billing) == {
        "openai 2026-11-25",
        "anthropic 2026-11-25",
        "aws 2026-11-01",
        "azure 2026-11-01",
        "gcp 2026-11-01",
    }, billing
    assert min(billing.values()) > 0
    has_failures_table = _query(
        nightly,
        "select count(*) from information_schema.tables "
        "where table_schema = 'raw' and table_name = 'pipeline_failures'",
    )[0][0]
    assert not has_failures_table  # nothing failed, nothing recorded

    # Anomaly scoring ran and published its table (no flags: one day of history is too short).
    assert _query(
        nightly,
        "select count(*) from information_schema.tables "
        "where table_schema = 'marts' and table_name = 'anomaly_flags'",
    )[0][0] == 1
    # Finance exports of the month equal the chargeback mart, to the cent and beyond.
    import pyarrow.parquet as pq

    exports = nightly["base"] / "out" / "exports"
    assert (exports / "chargeback-2026-11.csv").is_file()
    table = pq.read_table(exports / "chargeback-2026-11.parquet")
    mart = _query(
        nightly,
        "select count(*), sum(effective_cost_usd) from marts.mart_chargeback "
        "where month_start = date '2026-11-01'",
    )[0]
    assert table.num_rows == mart[0] > 0
    assert sum(table.column("effective_cost_usd").to_pylist()) == mart[1]


def test_steps_run_outside_airflow(nightly_run, nightly, tmp_path):
    """The functions the tasks call work on their own (same warehouse, no Airflow)."""
    settings = load_settings(warehouse=nightly["warehouse"])
    inputs = orch.RunInputs(gateway_path=str(nightly["gateway"]), out_dir=str(tmp_path / "out"))
    gate = orch.check_quality(RUN_DAY, settings)
    assert gate["rows_loaded"] == nightly["day"]["loaded"]
    assert gate["rows_read"] == nightly["day"]["lines"]
    assert gate["expectations"] > 0
    with pytest.raises(orch.QualityGateFailed, match="no gateway load"):
        orch.check_quality(RUN_DAY - timedelta(days=1), settings)
    billing = orch.ingest_billing_day(RUN_DAY, settings, inputs)  # no billing path given
    assert billing["skipped"] is True and "billing" in billing["reason"]
    empty = orch.RunInputs(billing_path=str(tmp_path / "no-bills"))
    assert orch.ingest_billing_day(RUN_DAY, settings, empty)["skipped"] is True
    plan = orch.billing_files_for(RUN_DAY, str(nightly["billing"]))
    assert {v: (rule, [Path(f).name for f in files]) for v, (rule, files) in plan.items()} == {
        "openai": ("date", ["costs-2026-11-25.jsonl", "usage-completions-2026-11-25.jsonl"]),
        "anthropic": ("date", ["cost-report-2026-11-25.jsonl", "usage-messages-2026-11-25.jsonl"]),
        "aws": ("month", ["cur2-2026-11.csv"]),
        "azure": ("month", ["cost-actual-2026-11.csv"]),
        "gcp": ("month", ["billing-export-2026-11.jsonl"]),
    }
    with pytest.raises(orch.MissingInput, match="no gateway file for 2026-10-26"):
        orch.ingest_gateway_day(RUN_DAY - timedelta(days=30), settings, inputs)


def test_forced_failure_is_recorded_in_pipeline_failures(dag, nightly, nightly_run):
    """An Airflow Variable points the run at a folder that does not exist (its name carries an
    email address): each failed try lands in raw.pipeline_failures, redacted."""
    from airflow.models import Variable

    bad = nightly["base"] / "alice.smith@example.com" / "missing"
    Variable.set("tokenbook_gateway_path", str(bad))
    try:
        run = dag.test(logical_date=_logical_date_for(FAIL_DAY))
    finally:
        Variable.delete("tokenbook_gateway_path")
    states = _states(run)
    assert str(run.state) == "failed"
    assert states["ingest_gateway"] == "failed"
    assert states["quality_gate"] == "upstream_failed"
    rows = _query(
        nightly,
        "select dag_id, task_id, run_id, run_date, try_number, exception_type, exception_text, "
        "logical_date from raw.pipeline_failures order by try_number",
    )
    assert [(r[0], r[1], r[3], r[4]) for r in rows] == [
        (DAG_ID, "ingest_gateway", FAIL_DAY, 1),
        (DAG_ID, "ingest_gateway", FAIL_DAY, 2),
    ]
    assert rows[0][2] == run.run_id
    assert rows[0][7] == datetime(FAIL_DAY.year, FAIL_DAY.month, FAIL_DAY.day) + timedelta(days=1)
    assert rows[0][5] == "MissingInput"
    text = rows[1][6]
    assert "does not exist" in text and "missing" in text
    assert "alice.smith@example.com" not in text
    assert len(text) <= orch.FAILURE_TEXT_LIMIT


# --------------------------------------------------------------------------- steps without Airflow


def test_gateway_layouts_and_refit_day(tmp_path):
    day = date(2026, 11, 23)
    (tmp_path / "gateway-2026-11-23.jsonl.gz").write_bytes(b"")
    (tmp_path / "gateway-2026-11-22.jsonl.gz").write_bytes(b"")
    (tmp_path / "dt=2026-11-23").mkdir()
    (tmp_path / "dt=2026-11-23" / "part-0.parquet").write_bytes(b"")
    (tmp_path / "dt=2026-11-23" / "notes.txt").write_text("x")
    files = orch.gateway_files_for(day, str(tmp_path))
    assert files == [
        str(tmp_path / "gateway-2026-11-23.jsonl.gz"),
        str(tmp_path / "dt=2026-11-23" / "part-0.parquet"),
    ]
    assert orch.gateway_files_for(day, "gs://bucket/logs/") == ["gs://bucket/logs/gateway-2026-11-23.*"]
    assert orch.is_refit_day(day) and not orch.is_refit_day(day + timedelta(days=1))
    assert orch.as_run_date(datetime(2026, 11, 23, 23, 30, tzinfo=UTC)) == day
    # Exports: the date's month, plus the previous month while late data may still restate it.
    assert orch.export_months(date(2026, 12, 2)) == ["2026-11", "2026-12"]
    assert orch.export_months(date(2026, 12, 4)) == ["2026-12"]
    with pytest.raises(orch.OrchestrationError, match="unknown outputs"):
        orch.publish_outputs(day, load_settings(), orch.RunInputs(), outputs=("pdf",))


def test_run_inputs_env_then_overrides():
    env = {orch.ENV_GATEWAY_PATH: "/data/gw", orch.ENV_OUT_DIR: "/data/out"}
    inputs = orch.RunInputs.from_env(env, gateway_path="/override", billing_path=None)
    assert inputs == orch.RunInputs(gateway_path="/override", billing_path=None, out_dir="/data/out")
    with pytest.raises(TypeError):
        orch.RunInputs.from_env(env, warehouse="x")


def test_failure_record_is_redacted_truncated_and_idempotent(tmp_warehouse):
    settings = load_settings(warehouse=tmp_warehouse)
    exc = RuntimeError("token sk-abcdefghijklmnopqrstuvwxyz123456 for bob@example.org " + "x" * 5000)
    record = orch.failure_record(
        dag_id=DAG_ID,
        task_id="t",
        run_id="r1",
        logical_date=datetime(2026, 11, 26, tzinfo=UTC),
        run_date=datetime(2026, 11, 25, tzinfo=UTC),
        try_number=1,
        exception=exc,
    )
    assert len(record.exception_text) <= orch.FAILURE_TEXT_LIMIT
    assert "bob@example.org" not in record.exception_text
    assert "sk-abcdefghijklmnopqrstuvwxyz123456" not in record.exception_text
    orch.record_failure(settings, record)
    orch.record_failure(settings, record)  # the same try recorded twice stays one row
    con = duckdb.connect(tmp_warehouse[len("duckdb:///") :], read_only=True)
    try:
        rows = con.execute(
            "select task_id, logical_date, run_date, exception_type from raw.pipeline_failures"
        ).fetchall()
    finally:
        con.close()
    assert rows == [("t", datetime(2026, 11, 26), date(2026, 11, 25), "RuntimeError")]


def test_failure_record_on_bigquery_is_one_append_load(monkeypatch):
    """BigQuery cannot be reached here: patch the client and check the load payload."""
    from google.cloud import bigquery

    calls = {}

    class FakeJob:
        def result(self):
            return None

    class FakeClient:
        def __init__(self, project=None, location=None, **kwargs):
            calls["client"] = (project, location)

        def load_table_from_json(self, rows, table_id, job_config=None):
            calls["load"] = (rows, table_id, job_config)
            return FakeJob()

    monkeypatch.setattr(bigquery, "Client", FakeClient)
    settings = load_settings(warehouse="bigquery://orbit-finops/tokenbook")
    record = orch.failure_record(
        dag_id=DAG_ID, task_id="ingest_gateway", run_id="r", logical_date=None, run_date=RUN_DAY,
        try_number=2, exception=ValueError("boom"),
    )
    table = orch.record_failure(settings, record)
    assert table == "orbit-finops.tokenbook_raw.pipeline_failures"
    rows, table_id, config = calls["load"]
    assert table_id == table and calls["client"] == ("orbit-finops", "US")
    assert rows[0]["run_date"] == "2026-11-25" and rows[0]["try_number"] == 2
    assert config.write_disposition == bigquery.WriteDisposition.WRITE_APPEND
    assert [f.name for f in config.schema] == [c for c, _, _ in orch.FAILURE_COLUMNS]


def test_quality_gate_on_bigquery_reads_the_audit_with_a_date_parameter(monkeypatch):
    """BigQuery cannot be reached here: patch the client, check the query and the verdict."""
    from google.cloud import bigquery

    seen = {}
    audit = {"files": 1, "rows_read": 10, "rows_loaded": 8, "rows_quarantined": 1,
             "rows_duplicate": 1, "failed": 0, "load_id": "load-1"}

    class FakeQuery:
        def result(self):
            return [seen["row"]]

    class FakeClient:
        def __init__(self, project=None, location=None, **kwargs):
            seen["client"] = (project, location)

        def query(self, sql, job_config=None):
            if "validation_results" in sql:  # every suite stored a passing result
                return type("Job", (), {"result": lambda _self: _all_suites()})()
            seen["sql"], seen["config"] = sql, job_config
            return FakeQuery()

    monkeypatch.setattr(bigquery, "Client", FakeClient)
    settings = load_settings(warehouse="bigquery://orbit-finops/tokenbook")
    seen["row"] = audit
    assert orch.check_quality(RUN_DAY, settings)["rows_loaded"] == 8
    assert "`orbit-finops.tokenbook_raw.load_audit`" in seen["sql"]
    (param,) = seen["config"].query_parameters
    assert (param.name, param.type_, param.value) == ("d", "DATE", RUN_DAY)
    seen["row"] = {**audit, "rows_read": 11}  # one row unaccounted for
    with pytest.raises(orch.QualityGateFailed, match="does not balance"):
        orch.check_quality(RUN_DAY, settings)


def test_a_missing_module_fails_the_task_never_skips_it(dag):
    """A step whose code is not installed fails its task, naming the module (issue 17: a
    broken installation must not pass as a skipped task)."""
    from airflow.sdk.exceptions import AirflowSkipException

    run_step = dag.get_task("ingest_gateway").python_callable.__globals__["_run_step"]
    with pytest.raises(orch.StepUnavailable, match="tokenbook_absent_module is not installed"):
        run_step(lambda: orch.resolve("tokenbook_absent_module:run")())
    # a step that has nothing to do for the date still skips
    with pytest.raises(AirflowSkipException, match="no bills"):
        run_step(lambda: {"skipped": True, "reason": "no bills"})
