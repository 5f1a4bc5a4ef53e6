"""The whole run against a warehouse: read actuals, forecast, explain flags, publish.

This is what ``tokenbook forecast`` and the nightly DAG call.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import replace
from datetime import date

import pandas as pd

from core.query import run_query, table_exists
from forecasting.anomalies import ScoringInputs, anomaly_series, explain_flags, impact_floor
from forecasting.config import ANOMALY_LEVELS, ForecastConfig
from forecasting.inputs import load_budgets, load_events, load_fermi_estimates, load_price_book
from forecasting.parallel import Progress
from forecasting.pipeline import ForecastRun, forecast_frame
from forecasting.publish import empty_like, publish_bigquery, publish_duckdb, run_tables
from forecasting.series import load_daily_series
from forecasting.tasks import split_series

log = logging.getLogger(__name__)


@contextmanager
def _opened(warehouse, con=None, bq_client=None):
    """``(source, con, bq_client)`` for one run: the DuckDB connection (``con``, else the file
    opened here and closed on leaving) or the BigQuery warehouse with its client (``bq_client``,
    else one built from the settings). ``source`` is what the readers take."""
    if warehouse.is_bigquery:
        bq_client = bq_client if bq_client is not None else warehouse.bigquery_client()
    own_con = not warehouse.is_bigquery and con is None
    if own_con:
        con = warehouse.connect()
    try:
        yield (warehouse if warehouse.is_bigquery else con), con, bq_client
    finally:
        if own_con:
            con.close()


def _publish(warehouse, con, bq_client, tables: dict[str, pd.DataFrame], as_of) -> None:
    if warehouse.is_bigquery:
        publish_bigquery(bq_client, warehouse, tables, as_of)
    else:
        publish_duckdb(con, tables, as_of)


def _explain(source, flags: pd.DataFrame, bq_client) -> None:
    """Fill ``why`` of the flagged rows (``is_anomaly``) in place, from one ledger query."""
    hit = flags["is_anomaly"].to_numpy(bool)
    if hit.any():
        flags.loc[hit, "why"] = explain_flags(source, flags[hit], client=bq_client).to_numpy()


def forecast_warehouse(
    warehouse,
    as_of: date,
    cfg: ForecastConfig | None = None,
    progress: Progress | None = None,
    con=None,
    bq_client=None,
    events: pd.DataFrame | None = None,
) -> ForecastRun:
    """Forecast from ``fct_llm_calls`` and rewrite the four forecast tables for ``as_of``.

    ``warehouse``: a ``core.warehouse.Warehouse``. For DuckDB an open ``con`` may be
    passed (else the file is opened); for BigQuery ``bq_client`` may be passed (tests).
    ``events`` overrides the events seed (e.g. the seed plus extra launches)."""
    cfg = cfg or ForecastConfig()
    with _opened(warehouse, con, bq_client) as (source, con, bq_client):
        frame = load_daily_series(
            source, as_of, levels=cfg.levels, metrics=cfg.metrics, client=bq_client
        )
        if frame.empty:
            raise ValueError(
                f"fct_llm_calls has no calls on or before {as_of}: run `tokenbook transform` "
                "first or pick a later --as-of"
            )
        run = forecast_frame(
            frame,
            as_of,
            load_events(config=cfg.config_dir) if events is None else events,
            load_fermi_estimates(config=cfg.config_dir),
            load_budgets(config=cfg.config_dir),
            cfg,
            progress,
            price_book=_price_book(source, warehouse, bq_client),
        )
        if not run.anomalies.empty:
            _explain(source, run.anomalies, bq_client)
        _publish(warehouse, con, bq_client, run_tables(run), run.as_of)
        return run


def _price_book(source, warehouse, client=None) -> pd.DataFrame:
    """The warehouse's price book (dbt ``int_price_book``: the seed plus every version loaded
    with ``tokenbook prices load``), so a newer price moves the forecast; the seed when the
    models are not built yet."""
    if not table_exists(source, warehouse, "staging", "int_price_book", client):
        return load_price_book()  # models not built yet: the shipped book
    table = warehouse.table("staging", "int_price_book")
    book = run_query(
        source,
        f"select provider, model, valid_from, input_per_mtok, output_per_mtok from {table}",
        client,
    )
    book["valid_from"] = pd.to_datetime(book["valid_from"])
    for col in ("input_per_mtok", "output_per_mtok"):
        book[col] = pd.to_numeric(book[col], errors="coerce").astype("float64")
    return book.dropna(subset=["input_per_mtok", "output_per_mtok"])


def _last_anomaly_factor(source, warehouse, as_of: date, client=None) -> tuple[float, dict]:
    """The anomaly calibration factor and chosen specs of the latest refit on or before as_of
    (1.0 and no specs when no refit has run yet: the table does not exist). Any other failure
    to read them raises: scoring with an uncalibrated factor would move every flag."""
    table = warehouse.table("marts", "forecast_backtest")
    sql = (
        f"select unique_id, spec, anomaly_calibration_factor from {table} "
        f"where as_of = (select max(as_of) from {table} where as_of <= date '{as_of.isoformat()}')"
        " and phase in ('calibration', 'holdout')"  # the daily model's rows, not the monthly
    )
    if not table_exists(source, warehouse, "marts", "forecast_backtest", client):
        log.info("no forecast refit yet (%s does not exist): anomaly factor 1.0", table)
        return 1.0, {}
    bt = run_query(source, sql, client)
    pooled = bt[bt["unique_id"] == "__pooled__|prophet"]
    factor = float(pooled["anomaly_calibration_factor"].iloc[0]) if len(pooled) else 1.0
    specs = dict(zip(bt["unique_id"], bt["spec"], strict=True))
    return factor, specs


def score_day_warehouse(
    warehouse, as_of: date, cfg: ForecastConfig, con=None, bq_client=None, events=None
):
    """Score only ``as_of`` for total / provider / feature spend and rewrite its flag rows.

    The fit for the day is the weekly one (data before the day's ISO Monday), so a daily run and
    the Monday refit agree on every day."""
    cfg = replace(cfg, anomaly_lookback_days=1)
    with _opened(warehouse, con, bq_client) as (source, con, bq_client):
        frame = load_daily_series(source, as_of, ANOMALY_LEVELS, ("spend",), client=bq_client)
        # (the refit's specs are not needed: anomalies are always scored with the log spec)
        factor, _specs = _last_anomaly_factor(source, warehouse, as_of, bq_client)
        scoring = ScoringInputs(
            pd.Timestamp(as_of),
            cfg,
            load_events(config=cfg.config_dir) if events is None else events,
            factor,
            impact_floor(frame, cfg.anomaly_min_impact_share),
        )
        parts = [anomaly_series(task, scoring) for task in split_series(frame)]
        parts = [p for p in parts if len(p)]
        flags = pd.concat(parts, ignore_index=True) if parts else empty_like("anomaly_flags")
        if len(flags):
            flags.insert(0, "as_of", scoring.as_of)
            flags["unit"] = "usd"
            flags["why"] = None
            _explain(source, flags, bq_client)
        _publish(warehouse, con, bq_client, {"anomaly_flags": flags}, as_of)
        n_flags = int(flags["is_anomaly"].sum()) if len(flags) else 0
        return {
            "as_of": as_of.isoformat(),
            "scored_series": len(parts),
            "anomalies": n_flags,
            "anomaly_calibration_factor": factor,
        }
