"""Prepare: the long frame of daily series (``unique_id, ds, y`` plus keys).

``load_daily_series`` reads ``marts.fct_llm_calls`` with one GROUP BY per series level;
``complete_days`` fills missing days with zero so every series is a contiguous daily grid.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from core.query import is_bigquery, run_query
from forecasting.config import KEY_COLUMNS, LEVELS, METRICS

FRAME_COLUMNS = ("unique_id", "series_level", "metric", *KEY_COLUMNS, "ds", "y")


def series_id(metric: str, level: str, keys: pd.DataFrame) -> pd.Series:
    """``metric|level|k=v|...`` built column-wise (no per-row Python)."""
    out = pd.Series(f"{metric}|{level}", index=keys.index, dtype="object")
    for col in LEVELS[level]:
        out = out + f"|{col}=" + keys[col].astype(str)
    return out


def level_sql(level: str, table: str, as_of: date, dialect: str = "duckdb") -> str:
    """One GROUP BY over fct_llm_calls giving spend, tokens and calls per day for a level."""
    keys = {
        "provider": "provider",
        "model": "coalesce(catalog_model, model)",
        "feature": "feature",
        "customer_segment": "customer_segment",
    }
    cols = LEVELS[level]
    select_keys = "".join(f"{keys[c]} as {c}, " for c in cols)
    group = ", ".join(["call_date", *[keys[c] for c in cols]])
    as_of_lit = f"date '{as_of.isoformat()}'"
    int_type = "bigint" if dialect == "duckdb" else "int64"
    money = "double" if dialect == "duckdb" else "float64"
    return (
        f"select call_date as ds, {select_keys}"
        f"cast(coalesce(sum(effective_cost_usd), 0) as {money}) as spend, "
        f"cast(coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0) as {int_type}) "
        f"as tokens, cast(count(*) as {int_type}) as calls "
        f"from {table} where call_date <= {as_of_lit} group by {group}"
    )


def load_daily_series(
    con_or_warehouse,
    as_of: date,
    levels: tuple[str, ...] = tuple(LEVELS),
    metrics: tuple[str, ...] = tuple(METRICS),
    table: str | None = None,
    client=None,
) -> pd.DataFrame:
    """Daily actuals through ``as_of`` (inclusive) as one long frame.

    ``con_or_warehouse``: an open DuckDB connection (reads ``marts.fct_llm_calls``) or a
    BigQuery ``Warehouse`` (reads ``<prefix>_marts.fct_llm_calls``). Spend is effective cost.
    """
    bq = is_bigquery(con_or_warehouse)
    if table is None:
        table = con_or_warehouse.table("marts", "fct_llm_calls") if bq else "marts.fct_llm_calls"
    dialect = "bigquery" if bq else "duckdb"
    parts = []
    for level in levels:
        try:
            wide = run_query(con_or_warehouse, level_sql(level, table, as_of, dialect), client)
        except Exception as exc:  # the warehouse's own error says which column or table
            raise RuntimeError(
                f"could not read daily {level} series from {table}: "
                f"{(str(exc).strip().splitlines() or [''])[0]} "
                "Build the marts first (tokenbook transform) or check docs/contracts.md columns."
            ) from exc
        for col in KEY_COLUMNS:
            if col not in wide:
                wide[col] = None
        wide[list(LEVELS[level])] = wide[list(LEVELS[level])].fillna("(unknown)")
        for metric in metrics:
            part = wide[["ds", *KEY_COLUMNS]].copy()
            part["y"] = wide[metric].astype("float64")
            part["metric"] = metric
            part["series_level"] = level
            part["unique_id"] = series_id(metric, level, part)
            parts.append(part)
    if not parts:
        return empty_frame()
    frame = pd.concat(parts, ignore_index=True)
    frame["ds"] = pd.to_datetime(frame["ds"])
    return complete_days(frame[list(FRAME_COLUMNS)], as_of)


def empty_frame() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(dtype="object") for c in FRAME_COLUMNS})
    out["ds"] = pd.to_datetime(out["ds"])
    out["y"] = out["y"].astype("float64")
    return out


def complete_days(frame: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Every series gets one row per day from its first day to ``as_of``; missing days are 0."""
    if frame.empty:
        return frame
    frame = frame.groupby(["unique_id", "ds"], as_index=False, sort=False).agg(
        {**{c: "first" for c in FRAME_COLUMNS if c not in ("unique_id", "ds", "y")}, "y": "sum"}
    )
    end = pd.Timestamp(as_of)
    meta = frame.groupby("unique_id", sort=True).agg(
        first=("ds", "min"), **{c: (c, "first") for c in ("series_level", "metric", *KEY_COLUMNS)}
    )
    n_days = ((end - meta["first"]).dt.days + 1).clip(lower=0).to_numpy()
    idx = np.repeat(np.arange(len(meta)), n_days)
    offsets = np.arange(n_days.sum()) - np.repeat(np.cumsum(n_days) - n_days, n_days)
    grid = meta.iloc[idx].reset_index()
    grid["ds"] = grid["first"].to_numpy() + pd.to_timedelta(offsets, unit="D")
    grid = grid.drop(columns="first")
    out = grid.merge(frame[["unique_id", "ds", "y"]], on=["unique_id", "ds"], how="left")
    out["y"] = out["y"].fillna(0.0)
    return out[list(FRAME_COLUMNS)].sort_values(["unique_id", "ds"], ignore_index=True)
