"""The nightly pipeline as plain functions: one per step, one date per call.

The Airflow DAG (``dags/tokenbook_nightly.py``) is wiring only: each of its tasks calls one
function here with the run's date (``data_interval_start``) and the settings. The same
functions run without Airflow (a shell, a test, ``tokenbook run --date``)::

    from datetime import date
    from tokenbook.orchestration import RunInputs, ingest_gateway_day
    from core.settings import load_settings

    ingest_gateway_day(date(2026, 11, 27), load_settings(), RunInputs.from_env())

One module per step, in the order the DAG runs them: ``config`` (load_config), ``ingest``
(ingest_gateway, ingest_billing), ``quality`` (data_quality, quality_gate), ``models``
(dbt_build), ``forecast`` (score_anomalies, refit_forecast), ``publish`` (publish_outputs);
``failures`` records a failed try; ``inputs`` (RunInputs, the environment), ``steps`` (how a
step imports its code) and ``errors`` serve them all.

Every step is idempotent for its date: it reads that date's inputs and overwrites that date's
partitions, so a retry or a backfill of the same date gives the same tables. No step reads the
clock to decide what to do.

Inputs come from environment variables (``inputs.py``), which Airflow Variables of the same
name in lower case may override at run time (``tokenbook_gateway_path`` ...). The warehouse
and its credentials are tokenbook settings (``TOKENBOOK_WAREHOUSE``, ``TOKENBOOK_BQ_KEYFILE``):
environment only, never in code.
"""

from __future__ import annotations

from tokenbook.orchestration.config import load_org_config
from tokenbook.orchestration.errors import (
    NOT_RETRYABLE,
    MissingInput,
    OrchestrationError,
    QualityGateFailed,
    StepUnavailable,
)
from tokenbook.orchestration.failures import (
    FAILURE_COLUMNS,
    FAILURE_TEXT_LIMIT,
    FAILURES_TABLE,
    FailureRecord,
    failure_record,
    record_failure,
    redact_text,
)
from tokenbook.orchestration.forecast import is_refit_day, refit_forecast, score_anomalies
from tokenbook.orchestration.ingest import (
    billing_files_for,
    gateway_files_for,
    ingest_billing_day,
    ingest_gateway_day,
)
from tokenbook.orchestration.inputs import (
    BIGQUERY_POOL,
    ENV_BILLING_PATH,
    ENV_DBT_MANIFEST,
    ENV_DBT_SELECT,
    ENV_GATEWAY_PATH,
    ENV_OUT_DIR,
    ENV_PUBLISH,
    INPUT_VARIABLES,
    RunInputs,
    as_run_date,
)
from tokenbook.orchestration.models import (
    AFTER_FORECAST_SELECTOR,
    build_models,
    dbt_manifest_path,
    write_dbt_manifest,
)
from tokenbook.orchestration.publish import export_months, publish_outputs
from tokenbook.orchestration.quality import check_data_quality, check_quality
from tokenbook.orchestration.steps import resolve

__all__ = [
    "AFTER_FORECAST_SELECTOR",
    "BIGQUERY_POOL",
    "ENV_BILLING_PATH",
    "ENV_DBT_MANIFEST",
    "ENV_DBT_SELECT",
    "ENV_GATEWAY_PATH",
    "ENV_OUT_DIR",
    "ENV_PUBLISH",
    "FAILURES_TABLE",
    "FAILURE_COLUMNS",
    "FAILURE_TEXT_LIMIT",
    "INPUT_VARIABLES",
    "NOT_RETRYABLE",
    "FailureRecord",
    "MissingInput",
    "OrchestrationError",
    "QualityGateFailed",
    "RunInputs",
    "StepUnavailable",
    "as_run_date",
    "billing_files_for",
    "build_models",
    "check_data_quality",
    "check_quality",
    "dbt_manifest_path",
    "export_months",
    "failure_record",
    "gateway_files_for",
    "ingest_billing_day",
    "ingest_gateway_day",
    "is_refit_day",
    "load_org_config",
    "publish_outputs",
    "record_failure",
    "redact_text",
    "refit_forecast",
    "resolve",
    "score_anomalies",
    "write_dbt_manifest",
]
