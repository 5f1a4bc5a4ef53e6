"""Flag: a day is anomalous when its actual lies outside the interval at ``level`` of a fit
that did not see it.

Cost: refitting per day is too slow, so fits are weekly. For each ISO week (Monday..Sunday),
one fit on the days BEFORE that Monday scores the 7 days of the week. A day within 14 days after a known launch or price change (events seed) that lies outside
the interval is recorded with ``known_event`` and not flagged. An isolated flagged day
(at most 2 flags in its week) is left out of later fits, so a runaway day does not widen the
next weeks' intervals; a run of flags (a level shift such as a launch) stays in, so the model
learns the new level.

``explain_flags`` adds a short ``why`` per flag from the ledger (one SQL query).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.inputs import STEP_KINDS
from forecasting.intervals import band, widen
from forecasting.models import fit_fallback, fit_prophet, is_flat

MAX_ISOLATED_FLAGS_PER_WEEK = 2
KNOWN_EVENT_DAYS = 14


def score_series(
    history: pd.DataFrame,
    as_of: pd.Timestamp,
    level: float,
    factor: float = 1.0,
    spec: str = "log",
    events: pd.DataFrame | None = None,
    min_train_days: int = 28,
    lookback_days: int | None = None,
    n_samples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Score the days of one series; one row per scored day (``is_anomaly`` marks flags)."""
    h = history.sort_values("ds").reset_index(drop=True)
    h = h[h["ds"] <= as_of]
    if h.empty:
        return pd.DataFrame()
    y_train = h["y"].to_numpy(float).copy()
    first = h["ds"].iloc[0]
    start = first + pd.Timedelta(days=min_train_days)
    if lookback_days is not None:
        start = max(start, as_of - pd.Timedelta(days=lookback_days - 1))
    if start > as_of:
        return pd.DataFrame()
    monday = start - pd.Timedelta(days=start.weekday())
    rows = []
    a = (1 - level) / 2
    week = 0
    while monday <= as_of:
        sunday = monday + pd.Timedelta(days=6)
        fit_mask = (h["ds"] < monday).to_numpy()
        score_mask = ((h["ds"] >= max(monday, start)) & (h["ds"] <= min(sunday, as_of))).to_numpy()
        if score_mask.any() and fit_mask.sum() >= 2:
            train = pd.DataFrame({"ds": h["ds"][fit_mask], "y": y_train[fit_mask]})
            if fit_mask.sum() >= min_train_days and not is_flat(train["y"].dropna().to_numpy()):
                model = fit_prophet(train, spec, events, n_samples)
            else:
                model = fit_fallback(train)
            days = pd.DatetimeIndex(h["ds"][score_mask])
            paths = model.sample(days, n_samples, seed=seed + week)
            lo, mid, hi = widen(*band(paths, level), factor)
            y = h["y"].to_numpy(float)[score_mask]
            above, below = y > hi, y < lo
            width = np.maximum(hi - lo, 1e-12)
            sev = np.where(above, (y - hi) / width, np.where(below, (lo - y) / width, 0.0))
            outside = above | below
            known = _known_events(days, events)
            flags = outside & (known == "")
            rows.append(
                pd.DataFrame(
                    {
                        "ds": days,
                        "actual": y,
                        "expected": mid,
                        "lower": lo,
                        "upper": hi,
                        "is_anomaly": flags,
                        "outside_interval": outside,
                        "known_event": known,
                        "direction": np.where(above, "above", np.where(below, "below", "")),
                        "severity": sev,
                        "method": model.method,
                        "spec": model.spec,
                        "model_version": model.version,
                        "fit_through": monday - pd.Timedelta(days=1),
                    }
                )
            )
            if 0 < flags.sum() <= MAX_ISOLATED_FLAGS_PER_WEEK:
                idx = np.flatnonzero(score_mask)[flags]
                y_train[idx] = np.nan
        monday += pd.Timedelta(days=7)
        week += 1
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    if not out.empty:
        out["interval_level"] = level
        out["quantiles"] = f"{a:.4f}/{1 - a:.4f}"
    return out


def _known_events(days: pd.DatetimeIndex, events: pd.DataFrame | None) -> np.ndarray:
    """Name of a launch / price change (in the series' scope) in the 14 days up to each day:
    a jump it explains is expected, not an anomaly."""
    out = np.full(len(days), "", dtype=object)
    if events is None or events.empty:
        return out
    steps = events[events["kind"].isin(STEP_KINDS)]
    for when, name in zip(steps["ds"], steps["event_name"], strict=True):
        age = (days - when).days.to_numpy()
        out[(age >= 0) & (age < KNOWN_EVENT_DAYS) & (out == "")] = name
    return out


_DIMENSIONS = {
    "model": "coalesce(catalog_model, model)",
    "customer_segment": "customer_segment",
    "prompt_template_id": "coalesce(prompt_template_id, '(none)')",
    "provider": "provider",
    "feature": "feature",
}


def why_sql(flags: pd.DataFrame, table: str, dialect: str = "duckdb") -> str:
    """For each flag, spend per (dimension, value) on the day vs the trailing 7-day mean."""

    def lit(v) -> str:
        return (
            "null"
            if v is None or (isinstance(v, float) and np.isnan(v))
            else "'" + str(v).replace("'", "''") + "'"
        )

    def minus(expr: str, days: int) -> str:
        if dialect == "bigquery":
            return f"date_sub({expr}, interval {days} day)"
        return f"cast({expr} - interval {days} day as date)"

    values = " union all ".join(
        f"select {i} as flag_id, date '{pd.Timestamp(r.ds).date().isoformat()}' as flag_date, "
        f"{lit(r.series_level)} as series_level, {lit(r.provider)} as f_provider, "
        f"{lit(r.feature)} as f_feature"
        for i, r in enumerate(flags.itertuples(index=False))
    )
    dims = " union all ".join(
        f"select flag_id, '{name}' as dimension, cast({name} as string) as value, "
        "sum(case when call_date = flag_date then cost else 0 end) as day_usd, "
        "sum(case when call_date < flag_date then cost else 0 end) / 7 as base_usd "
        f"from scoped group by flag_id, {name}"
        for name in _DIMENSIONS
    )
    cols = ", ".join(f"{expr} as {name}" for name, expr in _DIMENSIONS.items())
    lo = minus("min(flag_date)", 7)
    string_type = "string" if dialect == "bigquery" else "varchar"
    dims = dims.replace("as string", f"as {string_type}")
    money = "float64" if dialect == "bigquery" else "double"
    return f"""
with flags as ({values}),
calls as (
    select call_date, {cols}, cast(effective_cost_usd as {money}) as cost
    from {table}
    where call_date >= (select {lo} from flags) and call_date <= (select max(flag_date) from flags)
),
scoped as (
    select f.flag_id, f.flag_date, c.*
    from flags f
    join calls c
      on c.call_date <= f.flag_date and c.call_date >= {minus("f.flag_date", 7)}
     and (f.series_level = 'total'
          or (f.series_level = 'provider' and c.provider = f.f_provider)
          or (f.series_level = 'feature' and c.feature = f.f_feature))
),
by_dimension as ({dims})
select flag_id, dimension, value, day_usd, base_usd, day_usd - base_usd as delta_usd
from by_dimension
"""


def compose_why(flags: pd.DataFrame, breakdown: pd.DataFrame) -> pd.Series:
    """Pick, per flag, the (dimension, value) whose change explains most of the jump."""
    if flags.empty:
        return pd.Series([], dtype="object")
    b = breakdown.copy()
    own = {"provider": "provider", "feature": "feature"}
    level_of = flags["series_level"].reset_index(drop=True)
    b = b[b["dimension"] != b["flag_id"].map(level_of).map(own).fillna("")]
    b["abs_delta"] = b["delta_usd"].abs()
    total_delta = b.groupby(["flag_id", "dimension"])["delta_usd"].transform("sum")
    b["share"] = b["delta_usd"] / total_delta.where(total_delta.abs() > 1e-12)
    top = b.sort_values(["flag_id", "abs_delta"], ascending=[True, False]).drop_duplicates(
        "flag_id"
    )
    text = (
        top["dimension"]
        + " "
        + top["value"].astype(str)
        + ": $"
        + top["day_usd"].map("{:,.2f}".format)
        + " that day vs $"
        + top["base_usd"].map("{:,.2f}".format)
        + "/day over the previous 7 days ("
        + top["share"].map(lambda s: "n/a" if pd.isna(s) else f"{s:.0%}")
        + " of the change)"
    )
    out = pd.Series(text.to_numpy(), index=top["flag_id"].to_numpy())
    return out.reindex(range(len(flags))).fillna("no ledger rows for the day")


def explain_flags(
    con_or_warehouse, flags: pd.DataFrame, table: str | None = None, client=None
) -> pd.Series:
    """A ``why`` string per flag row (same order), from one query over fct_llm_calls."""
    from forecasting.series import _query
    from tokenbook.warehouse import Warehouse

    if flags.empty:
        return pd.Series([], dtype="object")
    bq = isinstance(con_or_warehouse, Warehouse) and con_or_warehouse.kind == "bigquery"
    if table is None:
        table = con_or_warehouse.table("marts", "fct_llm_calls") if bq else "marts.fct_llm_calls"
    sql = why_sql(flags.reset_index(drop=True), table, "bigquery" if bq else "duckdb")
    breakdown = _query(con_or_warehouse, sql, client)
    return compose_why(flags.reset_index(drop=True), breakdown)
