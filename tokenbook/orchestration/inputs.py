"""What a run reads from its environment: where its files are, and the date it processes.

Inputs come from environment variables (names below), which Airflow Variables of the same
name in lower case may override at run time (``tokenbook_gateway_path`` ...).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

# Environment variables (Airflow Variables named in lower case override them per run).
ENV_GATEWAY_PATH = "TOKENBOOK_GATEWAY_PATH"  # folder of gateway-YYYY-MM-DD.jsonl.gz, or gs://...
ENV_BILLING_PATH = "TOKENBOOK_BILLING_PATH"  # folder of vendor billing exports (optional)
ENV_OUT_DIR = "TOKENBOOK_OUT_DIR"  # where the report and the finance exports are written
ENV_DBT_MANIFEST = "TOKENBOOK_DBT_MANIFEST"  # manifest.json the DAG renders dbt tasks from
ENV_DBT_SELECT = "TOKENBOOK_DBT_SELECT"  # optional dbt selectors (space separated) for the DAG
ENV_PUBLISH = "TOKENBOOK_PUBLISH"  # outputs publish_outputs writes: chargeback,focus,report

INPUT_VARIABLES: dict[str, str] = {
    "gateway_path": ENV_GATEWAY_PATH,
    "billing_path": ENV_BILLING_PATH,
    "out_dir": ENV_OUT_DIR,
}

DEFAULT_OUT_DIR = "out"

# Airflow pool that every BigQuery-bound task uses (created by scripts/airflow_standalone.sh).
BIGQUERY_POOL = "bigquery"


@dataclass(frozen=True)
class RunInputs:
    """Where a run finds its input files and writes its outputs."""

    gateway_path: str | None = None
    billing_path: str | None = None
    out_dir: str = DEFAULT_OUT_DIR

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: str | None
    ) -> RunInputs:
        """Inputs from the environment; non-empty ``overrides`` (e.g. Airflow Variables) win."""
        env = os.environ if environ is None else environ
        values: dict[str, str] = {}
        for name, var in INPUT_VARIABLES.items():
            if env.get(var):
                values[name] = env[var]
        unknown = set(overrides) - set(INPUT_VARIABLES)
        if unknown:
            raise TypeError(f"unknown run inputs: {sorted(unknown)}")
        values.update({k: v for k, v in overrides.items() if v})
        return replace(cls(), **values)


def as_run_date(value: date | datetime | str) -> date:
    """The date a run processes: ``data_interval_start`` in UTC (or an ISO date string)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
