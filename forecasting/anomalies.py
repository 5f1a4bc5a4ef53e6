"""Flag: a day is anomalous when its actual lies outside the interval at ``level`` of a fit
that did not see it.

Cost: refitting per day is too slow, so fits are weekly. For each ISO week (Monday..Sunday),
one fit on the days BEFORE that Monday scores the 7 days of the week. A day within 14 days after a known launch or price change (events seed) that lies outside
the interval is recorded with ``known_event`` and not flagged. An isolated flagged day
(at most 2 flags in its week) is left out of later fits, so a runaway day does not widen the
next weeks' intervals; a run of flags (a level shift such as a launch) stays in, so the model
learns the new level.

``anomaly_series`` scores one ``SeriesTask`` with the run's ``ScoringInputs`` (the refit's pass 2
and the daily scoring of ``job.score_day_warehouse`` alike). ``explain_flags`` adds a short
``why`` per flag from the ledger (one SQL query).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from core.query import is_bigquery, run_query
from forecasting.config import ForecastConfig
from forecasting.inputs import STEP_KINDS, events_for_series
from forecasting.intervals import band, scores, widen
from forecasting.models import fit_fallback, fit_prophet, is_flat
from forecasting.tasks import SeriesTask

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
    min_impact: pd.Series | None = None,
) -> pd.DataFrame:
    """Score the days of one series; one row per scored day.

    ``factor``: the run's pooled conformal factor at ``level`` (from backtests). Each week the
    interval is widened by max(factor, the series' own factor from its earlier out-of-sample
    scores, see ``robust_own_factor``), so a heavy-tailed series gets the width its own errors
    ask for.
    ``min_impact`` (by day): a day outside the interval is flagged only when |actual - expected|
    reaches it (materiality; e.g. a share of total daily spend), so a cents-level series does
    not raise alarms. ``outside_interval`` keeps the plain definition.
    ``lookback_days`` limits the OUTPUT to the last days; the weekly fits still run over the
    history so the series' own calibration is the same as in a full run."""
    h = history.sort_values("ds").reset_index(drop=True)
    h = h[h["ds"] <= as_of]
    if h.empty:
        return pd.DataFrame()
    y_all = h["y"].to_numpy(float)
    y_train = y_all.copy()
    ds_all = pd.DatetimeIndex(h["ds"])
    first = ds_all[0]
    start = first + pd.Timedelta(days=min_train_days)
    if start > as_of:
        return pd.DataFrame()
    monday = start - pd.Timedelta(days=start.weekday())
    rows = []
    own_scores: list[np.ndarray] = []
    auto_steps: list[pd.Timestamp] = []
    week = 0
    while monday <= as_of:
        sunday = monday + pd.Timedelta(days=6)
        fit_mask = ds_all < monday
        score_mask = (ds_all >= max(monday, start)) & (ds_all <= min(sunday, as_of))
        if score_mask.any() and fit_mask.sum() >= 2:
            train = pd.DataFrame({"ds": ds_all[fit_mask], "y": y_train[fit_mask]})
            ev = _with_steps(events, auto_steps)
            if fit_mask.sum() >= min_train_days and not is_flat(train["y"].dropna().to_numpy()):
                model = fit_prophet(train, spec, ev, n_samples, min_days_after_step=3)
            else:
                model = fit_fallback(train)
            days = ds_all[score_mask]
            paths = model.sample(days, n_samples, seed=seed + week)
            raw = band(paths, level)
            y = y_all[score_mask]
            own = np.concatenate(own_scores) if own_scores else np.array([])
            k = max(factor, robust_own_factor(own, level), 1.0)
            lo, mid, hi = widen(*raw, k)
            above, below = y > hi, y < lo
            width = np.maximum(hi - lo, 1e-12)
            sev = np.where(above, (y - hi) / width, np.where(below, (lo - y) / width, 0.0))
            outside = above | below
            known = _known_events(days, events)
            material = np.ones(len(days), bool)
            if min_impact is not None:
                floor = min_impact.reindex(days).fillna(0.0).to_numpy(float)
                material = np.abs(y - mid) >= floor
            flags = outside & (known == "") & material
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
                        "calibration_factor": k,
                    }
                )
            )
            isolated = (
                flags if 0 < flags.sum() <= MAX_ISOLATED_FLAGS_PER_WEEK else np.zeros_like(flags)
            )
            # Own scores: every day but known events and level-shift runs (isolated flags stay
            # in: leaving them out would let a heavy-tailed series never widen).
            shift = np.zeros_like(flags)
            for direction in (above, below):
                if direction.sum() >= 3:
                    shift |= direction
            own_scores.append(scores(y, *raw)[(known == "") & ~shift])
            # A run of same-direction misses is a level shift (an unlisted launch, a model
            # switch): later fits get a step there. Isolated flags are left out of later fits.
            for direction in (above, below):
                if direction.sum() >= 3 and (known[direction] == "").all():
                    auto_steps.append(days[np.flatnonzero(direction)[0]])
            if isolated.any():
                y_train[np.flatnonzero(score_mask)[isolated]] = np.nan
        monday += pd.Timedelta(days=7)
        week += 1
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    if not out.empty:
        out["interval_level"] = level
        if lookback_days is not None:
            out = out[out["ds"] > as_of - pd.Timedelta(days=lookback_days)].reset_index(drop=True)
    return out


@dataclass(frozen=True)
class ScoringInputs:
    """What every scored series of one run shares: the run date, its configuration and events,
    the pooled anomaly factor of the latest refit and the materiality floor by day."""

    as_of: pd.Timestamp
    cfg: ForecastConfig
    events: pd.DataFrame
    factor: float = 1.0
    min_impact: pd.Series | None = None


def anomaly_series(task: SeriesTask, scoring: ScoringInputs) -> pd.DataFrame:
    """``score_series`` of one series with the run's settings and the events in its scope; the
    series' keys on every row."""
    meta, cfg = task.meta, scoring.cfg
    ev = events_for_series(scoring.events, meta.get("provider"), meta.get("feature"))
    scored = score_series(
        task.history,
        scoring.as_of,
        cfg.anomaly_level,
        factor=scoring.factor,
        spec="log",  # spend tails are multiplicative: the log spec scores anomalies
        events=ev,
        min_train_days=cfg.anomaly_min_train_days,
        lookback_days=cfg.anomaly_lookback_days,
        n_samples=cfg.n_samples,
        seed=cfg.seed,
        min_impact=scoring.min_impact,
    )
    for k, v in meta.items():
        scored[k] = v
    return scored


def impact_floor(frame: pd.DataFrame, share: float) -> pd.Series | None:
    """Per day: ``share`` x the trailing 28-day mean of total daily spend (days before it)."""
    total = frame[frame["unique_id"] == "spend|total"].sort_values("ds")
    if total.empty or share <= 0:
        return None
    trailing = total["y"].rolling(28, min_periods=7).mean().shift(1)
    return pd.Series((share * trailing).to_numpy(), index=pd.DatetimeIndex(total["ds"]))


def robust_own_factor(own: np.ndarray, level: float, min_scores: int = 21) -> float:
    """The series' own widening factor from its earlier out-of-sample scores (flags included):
    the 90th-percentile score rescaled to ``level`` as a normal tail would be. Using q90 rather
    than the extreme quantile keeps one runaway day from blinding the series for the rest of
    its history; a calibrated model gives about 1."""
    own = np.asarray(own, float)
    own = own[np.isfinite(own)]
    if len(own) < min_scores:
        return 0.0
    z = NormalDist().inv_cdf
    return float(np.quantile(own, 0.90)) * z(0.5 + level / 2) / z(0.95)


def _with_steps(events: pd.DataFrame | None, steps: list[pd.Timestamp]) -> pd.DataFrame | None:
    if not steps:
        return events
    auto = pd.DataFrame(
        {
            "ds": steps,
            "event_name": [f"level_shift_{d:%Y%m%d}" for d in steps],
            "kind": "launch",
            "provider": "",
            "feature": "",
        }
    )
    if events is None or events.empty:
        return auto
    return pd.concat([events, auto], ignore_index=True)


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
    """Pick, per flag, the (dimension, value) whose change explains most of the jump: the
    largest rise for a flag above the interval, the largest fall for one below. ``share`` is
    its part of all rises (or falls) in that dimension."""
    if flags.empty:
        return pd.Series([], dtype="object")
    f = flags.reset_index(drop=True)
    b = breakdown.copy()
    own = {"provider": "provider", "feature": "feature"}
    b = b[b["dimension"] != b["flag_id"].map(f["series_level"]).map(own).fillna("")]
    # A dimension the organisation does not use (no segment, no template ids: one absent value
    # over the day and its trailing week) cannot say what moved: "template (none) 100%" is noise.
    absent = b["value"].isna() | (b["value"].astype(str) == "(none)")
    values = b.groupby(["flag_id", "dimension"])["value"].transform("size")
    b = b[~(absent & (values == 1))]
    sign = np.where(b["flag_id"].map(f["direction"]).to_numpy() == "below", -1.0, 1.0)
    b["signed"] = b["delta_usd"].to_numpy(float) * sign
    b["moved"] = b["signed"].clip(lower=0)
    moved = b.groupby(["flag_id", "dimension"])["moved"].transform("sum")
    b["share"] = b["moved"] / moved.where(moved > 1e-12)
    # The top value of each dimension; keep those carrying most of the move, in a fixed order
    # (model, segment, template first: they say what to fix), at most three per flag.
    top = b.sort_values(["flag_id", "dimension", "signed"], ascending=[True, True, False])
    top = top.drop_duplicates(["flag_id", "dimension"])
    top = top[(top["signed"] > 0) & (top["share"] >= 0.5)]
    order = {name: i for i, name in enumerate(_DIMENSIONS)}
    top = top.assign(rank=top["dimension"].map(order)).sort_values(["flag_id", "rank"])
    top = top.groupby("flag_id").head(3)

    def money(v: pd.Series) -> pd.Series:
        return v.map(lambda x: f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}")

    top["part"] = (
        top["dimension"]
        + " "
        + top["value"].astype(str)
        + " $"
        + money(top["day_usd"])
        + " vs $"
        + money(top["base_usd"])
        + "/day ("
        + top["share"].map("{:.0%}".format)
        + ")"
    )
    word = f["direction"].map({"below": "drop", "above": "rise"}).fillna("change")
    parts = top.groupby("flag_id")["part"].agg("; ".join)
    lead = "day vs trailing 7-day mean, " + word + " driven by: "
    out = (lead + parts.reindex(range(len(f)))).where(
        parts.reindex(range(len(f))).notna(), "no single model, segment or template drove it"
    )
    return pd.Series(out.to_numpy(), index=range(len(f)))


def explain_flags(
    con_or_warehouse, flags: pd.DataFrame, table: str | None = None, client=None
) -> pd.Series:
    """A ``why`` string per flag row (same order), from one query over fct_llm_calls."""
    if flags.empty:
        return pd.Series([], dtype="object")
    bq = is_bigquery(con_or_warehouse)
    if table is None:
        table = con_or_warehouse.table("marts", "fct_llm_calls") if bq else "marts.fct_llm_calls"
    sql = why_sql(flags.reset_index(drop=True), table, "bigquery" if bq else "duckdb")
    breakdown = run_query(con_or_warehouse, sql, client)
    return compose_why(flags.reset_index(drop=True), breakdown)
