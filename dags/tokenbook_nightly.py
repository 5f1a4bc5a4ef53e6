"""
# tokenbook_nightly

The nightly tokenbook DAG: one run per day, for the day `data_interval_start` names (UTC).

| task | what it does for the run's date |
|---|---|
| `ingest_gateway` | loads `gateway-YYYY-MM-DD.jsonl.gz` from `TOKENBOOK_GATEWAY_PATH` into `raw.gateway_calls` (partition overwrite); no file fails it (Airflow retries) and an empty one is refused, except on a quiet day of the organisation (no call on this weekday in weeks, or a weekday declared in `closed_weekdays`: closed at weekends), when it is skipped and the checks still run |
| `ingest_billing` | loads the date's vendor billing exports from `TOKENBOOK_BILLING_PATH`; skipped when there are none |
| `load_config` | first: validates the organisation's configuration folder (`TOKENBOOK_CONFIG_DIR`) and loads it into `raw.config_*`; an invalid folder fails the run here, without retries |
| `data_quality` | `tokenbook check` for the date: Great Expectations suites compare the loaded partition with its history (volume, tags, unpriced share, schema drift, freshness, billing); results in `raw.validation_results`; fails with what broke |
| `quality_gate` | the load balanced (read = loaded + quarantined + duplicates) and every suite stored results that passed; a date with no load passes only when the check judged it a quiet day |
| `dbt_models.*` | one astronomer-cosmos task per dbt model (`dbt build` of the model and its tests) |
| `score_anomalies` | flags the date's anomalies against forecast intervals |
| `is_refit_day` / `refit_forecast` | refits the Prophet forecasts on Mondays only |
| `publish_outputs` | finance exports (chargeback, FOCUS; CSV and Parquet) and the HTML report of the month |

Every task is idempotent for its date; reruns and backfills overwrite the same partitions.
A delivery with no valid record, or one that would remove more than 90% of a loaded day, is
refused (the task fails without retrying, nothing is changed); after checking the file, trigger
the date with the `replace` param set to true to confirm the replacement (never the default).
A failed try is written to `raw.pipeline_failures` (redacted, truncated) and to the task log.
Configuration (environment, Airflow Variables in lower case override the paths): see
`dags/README.md`. This file is wiring only: no I/O and no heavy imports at parse time.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, date, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, CronDataIntervalTimetable, Param, get_current_context, task

from core.settings import load_settings, parse_flag, project_root
from core.warehouse import Warehouse
from tokenbook import orchestration as orch
from tokenbook.dbt import dbt_env

log = logging.getLogger(__name__)

DAG_ID = "tokenbook_nightly"
DBT_PROJECT_DIR = project_root() / "dbt_project"

# Parse-time configuration: environment only (no Variable or database reads while parsing).
SETTINGS = load_settings()
ON_BIGQUERY = Warehouse.from_settings(SETTINGS).is_bigquery
RETRIES = int(os.environ.get("TOKENBOOK_DAG_RETRIES", "2"))
RETRY_DELAY = timedelta(seconds=int(os.environ.get("TOKENBOOK_DAG_RETRY_DELAY_SECONDS", "300")))
START_DATE = datetime.fromisoformat(os.environ.get("TOKENBOOK_DAG_START", "2026-01-01")).replace(
    tzinfo=UTC
)
# TOKENBOOK_DAG_CATCHUP: off unless asked for. A deployment starts with the last complete day;
# running every night since TOKENBOOK_DAG_START is a choice (the local demo makes it, to build
# its history), and `airflow backfill create` runs chosen days.
CATCHUP = parse_flag(
    os.environ.get("TOKENBOOK_DAG_CATCHUP") or "false", "TOKENBOOK_DAG_CATCHUP",
    "set it to true to run every night since TOKENBOOK_DAG_START, or leave it unset to start "
    "with the last complete day",
)
# BigQuery jobs share the `bigquery` pool; DuckDB has one writer, so one task at a time.
POOL = orch.BIGQUERY_POOL if ON_BIGQUERY else "default_pool"


def _run_date() -> date:
    context = get_current_context()
    start = context.get("data_interval_start") or context.get("logical_date")
    if start is None:
        raise orch.OrchestrationError(
            "this run has no logical date: trigger it with one, e.g. "
            f"`airflow dags trigger {DAG_ID} --logical-date 2026-11-27T00:00:00+00:00`"
        )
    return orch.as_run_date(start)


def _inputs() -> orch.RunInputs:
    """Paths from the environment, overridden by Airflow Variables of the same name."""
    from airflow.sdk import Variable

    overrides = {
        name: Variable.get(var.lower(), default=None)
        for name, var in orch.INPUT_VARIABLES.items()
    }
    return orch.RunInputs.from_env(**overrides)


def _replace() -> bool:
    """The run's ``replace`` param: True only when someone triggered the date with it."""
    return bool(get_current_context().get("params", {}).get("replace", False))


def _run_step(step, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Call one orchestration step. An absent step (a module not installed) FAILS the task
    with StepUnavailable naming the module: a broken installation is never a skipped task.
    A refused load, an invalid configuration or thresholds file, or a failed quality check
    (``orch.NOT_RETRYABLE``) fails it without retries (the same input would fail again). Only a step that says there is nothing to do for the date (``skipped``)
    skips."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    try:
        result = step(*args, **kwargs)
    except orch.NOT_RETRYABLE as exc:  # a retry cannot fix any of them: fail now
        raise AirflowFailException(str(exc)) from exc
    log.info("%s: %s", step.__name__, result)
    if isinstance(result, dict) and result.get("skipped"):
        raise AirflowSkipException(str(result.get("reason", "nothing to do for this date")))
    return result


def record_task_failure(context: dict[str, Any]) -> None:
    """on_failure / on_retry callback: one row per failed try in raw.pipeline_failures."""
    ti = context.get("ti") or context.get("task_instance")
    try:
        record = orch.failure_record(
            dag_id=getattr(ti, "dag_id", DAG_ID),
            task_id=getattr(ti, "task_id", "?"),
            run_id=str(context.get("run_id") or getattr(ti, "run_id", "")),
            logical_date=context.get("logical_date"),
            run_date=context.get("data_interval_start") or context.get("logical_date"),
            try_number=getattr(ti, "try_number", 0),
            exception=context.get("exception"),
        )
        table = orch.record_failure(load_settings(), record)
        log.error(
            "tokenbook task %s failed (try %s) for %s: %s: %s; recorded in %s",
            record.task_id,
            record.try_number,
            record.run_date,
            record.exception_type,
            record.exception_text,
            table,
        )
    except Exception:  # the callback must never hide the task's own failure
        log.exception("could not record the failure of %s", getattr(ti, "task_id", "?"))


default_args = {
    "owner": "tokenbook",
    "retries": RETRIES,
    "retry_delay": RETRY_DELAY,
    "retry_exponential_backoff": False,
    "on_failure_callback": record_task_failure,
    "on_retry_callback": record_task_failure,
    "pool": POOL,
}


def _dbt_models(settings) -> Any:
    """One cosmos task per dbt model, rendered from the manifest (cheap to parse); a single
    `dbt build` task with a warning when the manifest has not been generated."""
    manifest = orch.dbt_manifest_path()
    if not manifest.is_file():
        log.warning(
            "dbt manifest %s not found: the DAG runs one `dbt build` task instead of one task "
            "per model; generate it with `python -c 'from tokenbook.orchestration import "
            "write_dbt_manifest; from core.settings import load_settings; "
            "write_dbt_manifest(load_settings())'` (scripts/airflow_standalone.sh does)",
            manifest,
        )

        @task(task_id="dbt_build")
        def dbt_build() -> dict[str, Any]:
            return orch.build_models(
                _run_date(), load_settings(), exclude=[orch.AFTER_FORECAST_SELECTOR]
            )

        return dbt_build()

    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import InvocationMode, LoadMode, TestBehavior, TestIndirectSelection

    env = dbt_env(settings)
    select = os.environ.get(orch.ENV_DBT_SELECT, "").split()
    return DbtTaskGroup(
        group_id="dbt_models",
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT_DIR,
            manifest_path=manifest,
            install_dbt_deps=False,
            env_vars=env,
        ),
        profile_config=ProfileConfig(
            profile_name="tokenbook",
            target_name=env["TOKENBOOK_DBT_TARGET"],
            profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml",
        ),
        execution_config=ExecutionConfig(
            invocation_mode=InvocationMode.DBT_RUNNER,  # in-process dbtRunner: the fastest
            # A model's task runs only the tests that read that model alone.
            test_indirect_selection=TestIndirectSelection.CAUTIOUS,
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            # `dbt build` per model: the model and its own tests in one invocation; a test
            # that reads several models runs as its own task once they are all built. (With a
            # selection, cosmos would render such tests even when their other models are not
            # selected: a partial run skips them.)
            test_behavior=TestBehavior.BUILD,
            should_detach_multiple_parents_tests=not select,
            select=select,
            # Models that read forecasts build after the forecast step (after_forecast_models).
            exclude=[orch.AFTER_FORECAST_SELECTOR],
        ),
        operator_args={
            "install_deps": False,
            # The run's date: an incremental model leaves loads dated after it to later runs
            # (dbt_project/macros/incremental.sql).
            "vars": {"run_date": "{{ data_interval_start.strftime('%Y-%m-%d') }}"},
            "retries": RETRIES,
            "retry_delay": RETRY_DELAY,
            "pool": POOL,
            # One try of a model at a time across runs in flight (catchup on BigQuery): a run
            # that read older raw rows never overwrites partitions a later run just rebuilt.
            "max_active_tis_per_dag": 1,
        },
    )


with DAG(
    dag_id=DAG_ID,
    # Data intervals: the run for day D starts after D ends, with data_interval_start = D.
    # (Airflow 3's plain "@daily" triggers at D 00:00 with no interval: D would be incomplete.)
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=CATCHUP,
    max_active_runs=4 if ON_BIGQUERY else 1,
    max_active_tasks=16 if ON_BIGQUERY else 1,
    default_args=default_args,
    doc_md=__doc__,
    tags=["tokenbook", "finops", "nightly"],
    # never true by default: a refused load is replaced only when someone triggers the date
    # with replace=true after looking at the file
    params={"replace": Param(False, type="boolean",
                             description="Confirm a load the shrink guard refused")},
) as dag:

    @task
    def ingest_gateway() -> dict[str, Any]:
        return _run_step(orch.ingest_gateway_day, _run_date(), load_settings(), _inputs(),
                         replace=_replace())

    @task(trigger_rule="none_failed")  # a quiet day's skipped gateway still loads the bills
    def ingest_billing() -> dict[str, Any]:
        return _run_step(orch.ingest_billing_day, _run_date(), load_settings(), _inputs(),
                         replace=_replace())

    @task(trigger_rule="none_failed", retries=RETRIES, retry_delay=RETRY_DELAY)
    def data_quality() -> dict[str, Any]:
        """Its own task (own retries and log): the suites read the warehouse only."""
        return _run_step(orch.check_data_quality, _run_date(), load_settings())

    @task(trigger_rule="none_failed")
    def quality_gate() -> dict[str, Any]:
        return _run_step(orch.check_quality, _run_date(), load_settings())

    @task
    def load_config() -> dict[str, Any]:
        """The organisation's configuration -> raw.config_*; an invalid folder stops the run."""
        return _run_step(orch.load_org_config, _run_date(), load_settings())

    @task(trigger_rule="none_failed")
    def score_anomalies() -> dict[str, Any]:
        return _run_step(orch.score_anomalies, _run_date(), load_settings())

    @task.short_circuit(trigger_rule="none_failed", ignore_downstream_trigger_rules=False)
    def is_refit_day() -> bool:
        return orch.is_refit_day(_run_date())

    @task
    def refit_forecast() -> dict[str, Any]:
        return _run_step(orch.refit_forecast, _run_date(), load_settings())

    @task(trigger_rule="none_failed")
    def after_forecast_models() -> dict[str, Any]:
        """Marts that read the forecast tables (KPIs, commitments, fine-tune), after a refit."""
        # Within a partial selection (TOKENBOOK_DBT_SELECT), only its forecast readers.
        selection = os.environ.get(orch.ENV_DBT_SELECT, "").split()
        after = orch.AFTER_FORECAST_SELECTOR
        select = [f"{after},{s}" for s in selection] if selection else [after]
        return _run_step(orch.build_models, _run_date(), load_settings(), select)

    @task(trigger_rule="none_failed")
    def publish_outputs() -> dict[str, Any]:
        return _run_step(orch.publish_outputs, _run_date(), load_settings(), _inputs())

    models = _dbt_models(SETTINGS)
    anomalies = score_anomalies()
    publish = publish_outputs()
    # An invalid configuration stops the night before anything is loaded or built.
    gate = quality_gate()
    load_config() >> ingest_gateway() >> ingest_billing() >> data_quality() >> gate
    gate >> models >> anomalies
    forecast_models = after_forecast_models()
    anomalies >> is_refit_day() >> refit_forecast() >> forecast_models
    anomalies >> forecast_models >> publish
