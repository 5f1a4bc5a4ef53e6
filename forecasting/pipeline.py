"""Run: prepare -> fit -> calibrate -> assemble -> flag, over one long frame.

``forecast_frame`` is pure (frames in, a ``ForecastRun`` out). ``forecasting.job`` wraps it with
the warehouse reads and writes: ``forecast_warehouse`` (the weekly refit) and
``score_day_warehouse`` (daily scoring of the run date only), which ``tokenbook forecast`` and
the nightly DAG call.

One process pool (``parallel``) serves two passes over series:
1. ``fit.fit_all``: per series, backtest on rolling cutoffs, choose the spec, the final fit and
   its sample paths over the horizon (spend first, then tokens / calls with spend's spec);
2. per total / provider / feature spend series: weekly-refit anomaly scoring
   (``anomalies.anomaly_series``).
Between them the parent pools the early-cutoff scores into conformal factors per method
(``calibrate``) and builds the published frames (``assemble``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from forecasting.anomalies import ScoringInputs, anomaly_series, impact_floor
from forecasting.assemble import apply_monthly_winners, assemble
from forecasting.calibrate import calibration_factors
from forecasting.changes import series_changes
from forecasting.config import ANOMALY_LEVELS, KEY_COLUMNS, ForecastConfig
from forecasting.fit import fit_all
from forecasting.inputs import known_changes
from forecasting.parallel import Progress, parallel_map, worker_pool
from forecasting.tasks import RunInputs, SeriesTask, series_tasks


@dataclass
class ForecastRun:
    as_of: pd.Timestamp
    daily: pd.DataFrame
    monthly: pd.DataFrame
    backtest: pd.DataFrame
    anomalies: pd.DataFrame
    factors: dict

    def summary_scalars(self) -> dict:
        """JSON-able figures for logs and XCom."""
        s = self.summary()
        out = {k: s[k] for k in ("anomalies", "scored_series_days", "series")}
        out["as_of"] = self.as_of.date().isoformat()
        for name in ("current_month", "next_month"):
            row = s[name]
            if row:
                for q in ("p10", "p50", "p90"):
                    out[f"{name}_total_{q}"] = round(float(row[q]), 2)
        return out

    def summary(self) -> dict:
        total = self.monthly[
            (self.monthly["series_level"] == "total") & (self.monthly["metric"] == "spend")
        ]
        nxt = total[total["month_kind"] == "future"].sort_values("month").head(1)
        flags = (
            self.anomalies[self.anomalies["is_anomaly"]]
            if not self.anomalies.empty
            else self.anomalies
        )
        return {
            "next_month": nxt.iloc[0].to_dict() if len(nxt) else None,
            "current_month": total[total["month_kind"] == "current"].iloc[0].to_dict()
            if (total["month_kind"] == "current").any()
            else None,
            "anomalies": int(len(flags)),
            "scored_series_days": int(len(self.anomalies)),
            "series": int(self.daily["unique_id"].nunique()) if not self.daily.empty else 0,
        }


def forecast_frame(
    frame: pd.DataFrame,
    as_of,
    events: pd.DataFrame,
    fermi: pd.DataFrame,
    budgets: pd.Series,
    cfg: ForecastConfig | None = None,
    progress: Progress | None = None,
    score_anomalies: bool = True,
    price_book: pd.DataFrame | None = None,
) -> ForecastRun:
    """Forecast every series of ``frame`` (long: unique_id, series_level, metric, keys, ds, y).
    ``price_book`` (forecasting.inputs.load_price_book): prices model switches and turns price
    versions into known changes; None: only events with a ``spend_ratio`` move forecasts."""
    cfg = cfg or ForecastConfig()
    missing = [
        c
        for c in ("unique_id", "series_level", "metric", *KEY_COLUMNS, "ds", "y")
        if c not in frame.columns
    ]
    if missing:
        raise ValueError(
            f"the series frame has missing columns {missing}: build it with "
            "forecasting.series.load_daily_series or forecasting.synthetic.synthetic_series"
        )
    as_of = pd.Timestamp(as_of).normalize()
    frame = frame[frame["ds"] <= as_of]
    tasks = series_tasks(frame, fermi, cfg)
    if not tasks:
        raise ValueError(
            f"no daily series to forecast up to {as_of.date()}: is fct_llm_calls empty or are "
            "all calls after --as-of?"
        )
    changes = known_changes(events, price_book)
    tasks = [
        replace(t, changes=tuple(series_changes(changes, frame, t.meta)))
        if t.meta["metric"] in cfg.monthly_metrics
        else t
        for t in tasks
    ]
    run = RunInputs(as_of, cfg, events, fermi)
    with worker_pool(cfg.workers) as pool:
        results = fit_all(tasks, run, progress, pool)
        factors = calibration_factors(results, cfg)
        daily, monthly, backtest = assemble(results, factors, budgets, as_of, cfg)
        monthly, monthly_bt = apply_monthly_winners(results, monthly, as_of, cfg)
        if len(monthly_bt):
            backtest = pd.concat([backtest, monthly_bt], ignore_index=True)
        anomalies = pd.DataFrame()
        if score_anomalies:
            anomalies = _score_anomalies(tasks, factors, frame, run, progress, pool)
    return ForecastRun(as_of, daily, monthly, backtest, anomalies, factors)


def _score_anomalies(
    tasks: list[SeriesTask], factors: dict, frame: pd.DataFrame,
    run: RunInputs, progress: Progress | None, pool,
) -> pd.DataFrame:
    """Pass 2: the anomaly frame of total / provider / feature spend, scored with the log spec
    and the pooled Prophet anomaly factor (``why`` left empty: the job fills it from the
    ledger)."""
    cfg = run.cfg
    scoring = ScoringInputs(
        run.as_of,
        cfg,
        run.events,
        factors.get("prophet", {"anomaly": 1.0})["anomaly"],
        impact_floor(frame, cfg.anomaly_min_impact_share),
    )
    scored = [
        (t, scoring)
        for t in tasks
        if t.meta["metric"] == "spend" and t.meta["series_level"] in ANOMALY_LEVELS
        and len(t.history)
    ]
    parts = parallel_map(anomaly_series, scored, cfg.workers, progress, "anomalies", pool)
    parts = [p for p in parts if len(p)]
    anomalies = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if not anomalies.empty:
        anomalies.insert(0, "as_of", run.as_of)
        anomalies["why"] = None
    return anomalies
