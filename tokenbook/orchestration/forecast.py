"""Steps ``score_anomalies`` (nightly) and ``refit_forecast`` (Mondays).

The forecasting package is imported when the step runs, never at DAG parse: a missing
forecasting package fails the task with StepUnavailable.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from core.settings import Settings
from core.warehouse import Warehouse
from tokenbook.orchestration.inputs import as_run_date
from tokenbook.orchestration.steps import resolve, summary

FORECAST_TARGET = "forecasting.job:forecast_warehouse"
ANOMALY_TARGET = "forecasting.job:score_day_warehouse"
CONFIG_TARGET = "forecasting.config:ForecastConfig"


def is_refit_day(run_date: date) -> bool:
    """Forecasts are refit weekly, on the run for an ISO week's Monday."""
    return as_run_date(run_date).isoweekday() == 1


def forecast_config(settings: Settings):
    """The run's ``forecasting.config.ForecastConfig``: anomaly level, configuration folder."""
    folder = settings.resolved_config_dir
    return resolve(CONFIG_TARGET)(anomaly_level=settings.anomaly_level,
                                  config_dir=str(folder) if folder is not None else None)


def score_anomalies(run_date: date, settings: Settings) -> dict[str, Any]:
    """Score the date's spend (total, per provider, per feature) against the interval of the
    latest weekly fit that did not see it; rewrites the date's rows of marts.anomaly_flags."""
    run_date = as_run_date(run_date)
    score = resolve(ANOMALY_TARGET)
    report = score(Warehouse.from_settings(settings), run_date, forecast_config(settings))
    return summary(report, {"date": run_date.isoformat()})


def refit_forecast(run_date: date, settings: Settings) -> dict[str, Any]:
    """Refit every forecast as of the date and rewrite the four forecast tables for it
    (the DAG calls it on Mondays; ``is_refit_day``)."""
    run_date = as_run_date(run_date)
    forecast = resolve(FORECAST_TARGET)
    run = forecast(Warehouse.from_settings(settings), run_date, forecast_config(settings))
    flagged = 0 if run.anomalies.empty else int(run.anomalies["is_anomaly"].sum())
    return {
        "date": run_date.isoformat(),
        "series": int(run.daily["unique_id"].nunique()) if not run.daily.empty else 0,
        "anomalies": flagged,
    }
