"""Run: prepare -> fit -> predict -> backtest -> calibrate -> flag, over one long frame.

``forecast_frame`` is pure (frames in, frames out). ``forecasting.job`` wraps it with the
warehouse reads and writes: ``forecast_warehouse`` (the weekly refit) and
``score_day_warehouse`` (daily scoring of the run date only), which ``tokenbook forecast`` and
the nightly DAG call.

Two parallel passes over series (a process pool):
1. per series: backtest on rolling cutoffs (both specs on the early cutoffs, the better one on
   the later ones), then the final fit and its sample paths over the horizon;
2. per total / provider / feature spend series: weekly-refit anomaly scoring.
Between them the parent pools the early-cutoff scores into conformal factors per method:
daily at the interval level, horizon sums (for months) and daily at the anomaly level.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from forecasting.anomalies import robust_own_factor, score_series
from forecasting.backtest import (
    backtest_points,
    interval_coverage,
    point_metrics,
    rolling_cutoffs,
    split_phases,
)
from forecasting.config import ANOMALY_LEVELS, KEY_COLUMNS, METRICS, ForecastConfig, model_version
from forecasting.inputs import events_for_series
from forecasting.intervals import (
    band,
    conformal_factor,
    coverage,
    monthly_from_samples,
    scores,
    widen,
)
from forecasting.models import fermi_samples, fit_fallback, fit_prophet, is_flat

Progress = Callable[[str, int, int], None]
META_COLUMNS = ("unique_id", "series_level", "metric", *KEY_COLUMNS)


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


def horizon_dates(as_of: pd.Timestamp, months: int) -> pd.DatetimeIndex:
    """From the day after ``as_of`` to the end of the month ``months`` after as_of's month."""
    end = (as_of.to_period("M") + months).to_timestamp(how="end").normalize()
    return pd.date_range(as_of + pd.Timedelta(days=1), end, freq="D")


def choose_method(
    meta: dict, history: pd.DataFrame, cfg: ForecastConfig, fermi: pd.DataFrame
) -> str:
    y = history["y"].to_numpy(float)
    nonzero = np.flatnonzero(y > 0)
    active_days = len(y) - nonzero[0] if len(nonzero) else 0
    if (
        meta["series_level"] == "feature"
        and meta["feature"] in fermi.index
        and active_days < cfg.new_feature_days
    ):
        return "fermi"
    if len(y) >= cfg.min_prophet_days and not is_flat(y[-cfg.min_prophet_days :]):
        return "prophet"
    return "fallback"


def _fitter(method: str, spec: str | None, events, n_samples: int):
    if method == "prophet":
        return partial(_fit_prophet, spec=spec, events=events, n_samples=n_samples)
    return fit_fallback


def _fit_prophet(train: pd.DataFrame, spec, events, n_samples):
    # A backtest window can be flat even when the whole series is not.
    if is_flat(train["y"].to_numpy(float)[-28:]):
        return fit_fallback(train)
    return fit_prophet(train, spec, events, n_samples, detect_shifts=True)


def _close_enough(sums: pd.DataFrame, tolerance: float) -> bool:
    """The horizon sum's error is within ``tolerance`` x its own band half-width."""
    half = float(((sums["hi"] - sums["lo"]) / 2).mean())
    return float(np.abs(sums["y"] - sums["p50"]).mean()) <= tolerance * half


def _mae(pts: pd.DataFrame) -> float:
    return float(np.abs(pts["y"] - pts["p50"]).mean()) if len(pts) else np.inf


# Guard: the last 28 days of the horizon may not average more than MAX_GROWTH x the last
# 14 days' run rate (p50), nor have a p90 above MAX_SPREAD x its p50.
MAX_GROWTH = 2.0
MAX_SPREAD = 3.0


def implausible(paths: np.ndarray, history: pd.DataFrame) -> bool:
    """A projection no recent history supports: runaway growth or an exploding band (what a
    log-spec trend does with a level step it took for growth)."""
    recent = history["y"].to_numpy(float)[-14:]
    rate = float(np.nanmean(recent)) if len(recent) else 0.0
    tail = paths[-28:].mean(axis=0)
    p50, p90 = np.quantile(tail, [0.5, 0.9])
    if rate <= 0:
        return False
    return bool(p50 > MAX_GROWTH * rate or p90 > MAX_SPREAD * max(p50, 1e-9))


def _plausible(model, paths, history, dates, spec, method, ev, cfg, seed):
    """Keep the chosen spec unless its projection is implausible; then the other trend spec,
    then no trend at all (``flat``: level, steps and weekly pattern)."""
    if not implausible(paths, history):
        return model, paths
    for alt in [s for s in cfg.specs if s != spec] + ["flat"]:
        m = _fitter(method, alt, ev, cfg.n_samples)(history)
        p = m.sample(dates, cfg.n_samples, seed=seed)
        if alt == "flat" or not implausible(p, history):
            return m, p
    return model, paths  # unreachable: flat is always accepted


def forecast_series(
    meta: dict,
    history: pd.DataFrame,
    as_of: pd.Timestamp,
    cfg: ForecastConfig,
    events: pd.DataFrame,
    fermi: pd.DataFrame,
    spec_hint: str | None = None,
    changes: list | None = None,
) -> dict:
    """Pass 1 for one series: backtest, choose the spec, final fit, raw (uncalibrated) bands
    and month-sum paths; for spend, the monthly competition (forecasting/monthly.py). Never
    raises for short or flat data (falls back).
    ``spec_hint``: use this spec (chosen on the matching spend series) instead of comparing.
    ``changes``: known changes ``(date, spend ratio, name)`` that move this series."""
    levels = (cfg.interval_level, cfg.anomaly_level)
    method = choose_method(meta, history, cfg, fermi)
    ev = events_for_series(events, meta.get("provider"), meta.get("feature"))
    seed = cfg.seed + zlib.crc32(meta["unique_id"].encode()) % 10_000
    dates = horizon_dates(as_of, cfg.horizon_months)
    out = {
        "meta": meta,
        "method": method,
        "spec": None,
        "points": pd.DataFrame(),
        "sums": pd.DataFrame(),
    }

    if method != "fermi" and len(history) > 0:
        n_cutoffs = (
            min(cfg.cheap_cutoffs, cfg.backtest_cutoffs)
            if meta["metric"] in cfg.cheap_metrics
            else cfg.backtest_cutoffs
        )
        cutoffs = rolling_cutoffs(
            history["ds"].iloc[0],
            history["ds"].iloc[-1],
            n_cutoffs,
            cfg.backtest_horizon_days,
            cfg.backtest_period_days,
            cfg.min_prophet_days if method == "prophet" else 14,
        )
        early, late = split_phases(cutoffs) if len(cutoffs) >= 2 else ([], [])
        bt = partial(
            backtest_points,
            history,
            horizon=cfg.backtest_horizon_days,
            n_samples=min(cfg.backtest_samples, cfg.n_samples),
            levels=levels,
            seed=seed,
        )
        spec = None
        if method == "prophet":
            spec = spec_hint if spec_hint in cfg.specs else cfg.specs[0]
            if early and spec_hint in cfg.specs:
                pts_e, sums_e = bt(_fitter(method, spec, ev, cfg.n_samples), early)
            elif early:
                # The spec is chosen on the last early cutoff; the other early
                # cutoffs are then run with the chosen spec only (saves a fit per cutoff).
                # Judged on the error of the horizon SUM (what months are made of), the daily
                # MAE breaking ties: a spec that is good day by day but drifts loses.
                best = None
                for s in cfg.specs:
                    pts, sums = bt(_fitter(method, s, ev, cfg.n_samples), early[-1:])
                    score = (
                        (float(np.abs(sums["y"] - sums["p50"]).mean()), _mae(pts))
                        if len(sums)
                        else (np.inf, np.inf)
                    )
                    if best is None or score < best[0]:
                        best = (score, s, pts, sums)
                    if len(sums) and _close_enough(sums, cfg.spec_skip_tolerance):
                        break  # the other spec cannot be clearly better: skip its fit
                _, spec, pts_e, sums_e = best
                if len(early) > 1:
                    more_p, more_s = bt(_fitter(method, spec, ev, cfg.n_samples), early[:-1])
                    pts_e = pd.concat([more_p, pts_e], ignore_index=True)
                    sums_e = pd.concat([more_s, sums_e], ignore_index=True)
        elif early:
            pts_e, sums_e = bt(fit_fallback, early)
        if early:
            pts_l, sums_l = bt(_fitter(method, spec, ev, cfg.n_samples), late)
            out["points"] = pd.concat(
                [pts_e.assign(phase="calibration"), pts_l.assign(phase="holdout")],
                ignore_index=True,
            )
            out["sums"] = pd.concat(
                [sums_e.assign(phase="calibration"), sums_l.assign(phase="holdout")],
                ignore_index=True,
            )
        out["spec"] = spec
        model = _fitter(method, spec, ev, cfg.n_samples)(history)
        paths = model.sample(dates, cfg.n_samples, seed=seed)
        if model.method == "prophet":
            model, paths = _plausible(model, paths, history, dates, spec, method, ev, cfg, seed)
        out["method"] = model.method
        out["spec"] = model.spec
        if meta["metric"] in cfg.monthly_metrics:
            out.update(_monthly_competition(history, model, dates, ev, cfg, changes or []))
    else:
        paths = fermi_samples(
            fermi.loc[meta["feature"]], meta["metric"], dates, cfg.n_samples, seed
        )
        out["method"] = "fermi"

    out["version"] = model_version(out["method"], out["spec"])
    lo, mid, hi = band(paths, cfg.interval_level)
    out["daily"] = pd.DataFrame({"ds": dates, "lo": lo, "mid": mid, "hi": hi})
    month_start = as_of.to_period("M").start_time
    mtd = float(history.loc[history["ds"] >= month_start, "y"].sum()) if len(history) else 0.0
    monthly = monthly_from_samples(dates, paths, cfg.interval_level, {month_start: mtd})
    if monthly.empty or monthly["month"].iloc[0] != month_start:  # as_of is a month's last day
        done = {
            "month": month_start,
            "actual_to_date": mtd,
            "forecast_days": 0,
            "p_lo": mtd,
            "p50": mtd,
            "p_hi": mtd,
            "paths": np.full(paths.shape[1], mtd),
        }
        monthly = pd.concat([pd.DataFrame([done]), monthly], ignore_index=True)
    out["monthly"] = monthly
    return out


def change_multiplier(changes: list, dates: pd.DatetimeIndex, after: pd.Timestamp) -> np.ndarray:
    """Per day of ``dates``: the product of the ratios of known changes dated after ``after``
    and on or before the day."""
    out = np.ones(len(dates))
    for when, ratio, _name in changes:
        if when > after:
            out *= np.where(dates >= when, ratio, 1.0)
    return out


def _monthly_competition(history, final_model, dates, ev, cfg, changes) -> dict:
    """Backtest next month's sum for the baselines (and Prophet when it is the daily model),
    and each one's point forecast over the horizon (known changes applied)."""
    from forecasting.monthly import BASELINES, POINT, monthly_backtest, volatility

    methods = {
        name: (lambda train, d, f=POINT[name]: f(train["y"].to_numpy(float), len(d)))
        for name in BASELINES
    }
    if final_model.method == "prophet":
        spec = final_model.spec

        def prophet_point(train, d):
            return _fitter("prophet", spec, ev, 0)(train).point(d)

        methods["prophet"] = prophet_point
    kind, bt = monthly_backtest(
        history, methods, cfg, lambda d, origin: change_multiplier(changes, d, origin)
    )
    as_of = history["ds"].iloc[-1]
    mult = change_multiplier(changes, dates, as_of)
    finals = {name: fn(history, dates) * mult for name, fn in methods.items() if name != "prophet"}
    if "prophet" in methods:
        finals["prophet"] = final_model.point(dates) * mult
    finals["fallback"] = fit_fallback(history).point(dates) * mult
    used = [f"{name} {when:%Y-%m-%d} x{ratio:.3g}" for when, ratio, name in changes if when > as_of]
    return {
        "monthly_kind": kind,
        "monthly_bt": bt,
        "final_points": finals,
        "vol_now": volatility(history["y"].to_numpy(float)),
        "events_applied": "; ".join(used) or None,
    }


def impact_floor(frame: pd.DataFrame, share: float) -> pd.Series | None:
    """Per day: ``share`` x the trailing 28-day mean of total daily spend (days before it)."""
    total = frame[frame["unique_id"] == "spend|total"].sort_values("ds")
    if total.empty or share <= 0:
        return None
    trailing = total["y"].rolling(28, min_periods=7).mean().shift(1)
    return pd.Series((share * trailing).to_numpy(), index=pd.DatetimeIndex(total["ds"]))


def anomaly_series(
    meta: dict,
    history: pd.DataFrame,
    as_of: pd.Timestamp,
    cfg: ForecastConfig,
    events,
    spec,
    factor,
    min_impact: pd.Series | None = None,
) -> pd.DataFrame:
    ev = events_for_series(events, meta.get("provider"), meta.get("feature"))
    scored = score_series(
        history,
        as_of,
        cfg.anomaly_level,
        factor=factor,
        spec="log",  # spend tails are multiplicative: the log spec scores anomalies
        events=ev,
        min_train_days=cfg.anomaly_min_train_days,
        lookback_days=cfg.anomaly_lookback_days,
        n_samples=cfg.n_samples,
        seed=cfg.seed,
        min_impact=min_impact,
    )
    for k, v in meta.items():
        scored[k] = v
    return scored


def _call(fn, args):
    return fn(*args)


def parallel_map(
    fn, tasks: list[tuple], workers: int, progress: Progress | None, phase: str, pool=None
):
    """Run ``fn(*task)`` for every task, in a process pool when workers > 1; results in order.
    ``pool``: an open executor to reuse (its owner shuts it down); else one is made here."""
    results: list = [None] * len(tasks)
    if progress:
        progress(phase, 0, len(tasks))
    if workers <= 1 or len(tasks) <= 1:
        for i, t in enumerate(tasks):
            results[i] = fn(*t)
            if progress:
                progress(phase, i + 1, len(tasks))
        return results
    if pool is None:
        with worker_pool(workers) as own:
            return parallel_map(fn, tasks, workers, progress, phase, own)
    futures = {pool.submit(_call, fn, t): i for i, t in enumerate(tasks)}
    try:
        for done, fut in enumerate(as_completed(futures), start=1):
            results[futures[fut]] = fut.result()
            if progress:
                progress(phase, done, len(tasks))
    except BaseException:
        for fut in futures:
            fut.cancel()
        raise
    return results


@contextmanager
def worker_pool(workers: int):
    """A process pool that is always shut down and joined (queued work cancelled on error),
    so no worker or feeder thread outlives the run (no 'Bad file descriptor' at exit)."""
    if workers <= 1:
        yield None
        return
    pool = ProcessPoolExecutor(max_workers=workers)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    else:
        pool.shutdown(wait=True)


def series_changes(changes: pd.DataFrame, frame: pd.DataFrame, meta: dict) -> list:
    """Known changes that move one series: ``(date, ratio, name)`` with the ratio scaled by the
    share of the series' last 28 days of the same metric that the change's scope holds (a
    feature's model switch moves the total by that feature's share). A scope the series does
    not contain and cannot be split by (e.g. a model's price for a feature) is left out."""
    from forecasting.config import LEVELS

    if changes is None or changes.empty:
        return []
    keys = {c: meta.get(c) for c in LEVELS[meta["series_level"]]}
    out = []
    for c in changes.itertuples():
        scope = {k: v for k, v in (("provider", c.provider), ("feature", c.feature),
                                   ("model", c.model)) if isinstance(v, str) and v}
        if any(k in keys and keys[k] != v for k, v in scope.items()):
            continue  # another feature / provider / model
        share = 1.0
        if not set(scope) <= set(keys):
            both = {**keys, **scope}
            level = next((lv for lv, cols in LEVELS.items() if set(cols) == set(both)), None)
            if level is None:
                continue
            uid = "|".join([meta["metric"], level, *(f"{k}={both[k]}" for k in LEVELS[level])])
            part = frame.loc[frame["unique_id"] == uid, ["ds", "y"]]
            whole = frame.loc[frame["unique_id"] == meta["unique_id"], ["ds", "y"]]
            if part.empty or whole.empty:
                continue
            since = whole["ds"].max() - pd.Timedelta(days=27)
            denom = float(whole.loc[whole["ds"] >= since, "y"].sum())
            share = float(part.loc[part["ds"] >= since, "y"].sum()) / denom if denom > 0 else 0.0
        ratio = 1 + min(share, 1.0) * (c.ratio - 1)
        if abs(ratio - 1) > 1e-9:
            out.append((pd.Timestamp(c.ds), float(ratio), c.event_name))
    return out


def _series_tasks(
    frame: pd.DataFrame, fermi: pd.DataFrame, cfg: ForecastConfig
) -> list[tuple[dict, pd.DataFrame]]:
    frame = frame[frame["series_level"].isin(cfg.levels) & frame["metric"].isin(cfg.metrics)]
    tasks = []
    for _uid, g in frame.groupby("unique_id", sort=True):
        meta = {c: (None if pd.isna(g[c].iloc[0]) else g[c].iloc[0]) for c in META_COLUMNS}
        tasks.append((meta, g[["ds", "y"]].sort_values("ds").reset_index(drop=True)))
    # New features with a Fermi estimate but no data yet still get a forecast.
    if "feature" in cfg.levels:
        seen = set(frame.loc[frame["series_level"] == "feature", "feature"])
        for feature in fermi.index:
            if feature in seen:
                continue
            for metric in cfg.metrics:
                meta = {c: None for c in META_COLUMNS}
                meta.update(
                    unique_id=f"{metric}|feature|feature={feature}",
                    series_level="feature",
                    metric=metric,
                    feature=feature,
                )
                tasks.append((meta, pd.DataFrame({"ds": pd.to_datetime([]), "y": []})))
    return tasks


def calibration_factors(results: list[dict], cfg: ForecastConfig) -> dict:
    """Conformal factors per method from the EARLY (calibration) cutoffs, pooled over series."""
    factors = {}
    methods = {r["method"] for r in results}
    for method in methods:
        pts = [r["points"] for r in results if r["method"] == method and len(r["points"])]
        sums = [r["sums"] for r in results if r["method"] == method and len(r["sums"])]
        f = {"daily": 1.0, "sum": 1.0, "anomaly": 1.0}
        if pts:
            p = pd.concat(pts, ignore_index=True)
            p = p[p["phase"] == "calibration"]
            L, A = cfg.interval_level, cfg.anomaly_level
            f["daily"] = conformal_factor(scores(p["y"], p[f"lo_{L}"], p["p50"], p[f"hi_{L}"]), L)
            # At the anomaly level the conformal rank is the maximum for n < 100 and any spike in
            # the backtest window would set it: use the outlier-robust estimate instead.
            f["anomaly"] = robust_own_factor(
                scores(p["y"], p[f"lo_{A}"], p["p50"], p[f"hi_{A}"]), A, min_scores=1
            )
        if sums:
            s_ = pd.concat(sums, ignore_index=True)
            s_ = s_[s_["phase"] == "calibration"]
            f["sum"] = conformal_factor(
                scores(s_["y"], s_["lo"], s_["p50"], s_["hi"]), cfg.interval_level
            )
        # Anomaly intervals are never narrowed below the model's own (fewer false alarms).
        f["anomaly"] = max(1.0, f["anomaly"])
        factors[method] = f
    return factors


def _backtest_row(points: pd.DataFrame, sums: pd.DataFrame, f: dict, cfg: ForecastConfig) -> dict:
    L, A = cfg.interval_level, cfg.anomaly_level
    row = point_metrics(points)
    row.update(
        interval_level=L,
        coverage_raw=interval_coverage(points, L),
        anomaly_level=A,
        anomaly_coverage_raw=interval_coverage(points, A),
        calibration_factor=f["daily"],
        sum_calibration_factor=f["sum"],
        anomaly_calibration_factor=f["anomaly"],
        n_cutoffs=int(points["cutoff"].nunique()) if len(points) else 0,
        first_cutoff=points["cutoff"].min() if len(points) else pd.NaT,
        last_cutoff=points["cutoff"].max() if len(points) else pd.NaT,
        horizon_days=cfg.backtest_horizon_days,
    )
    if len(points):
        for key, level, name in (
            ("daily", L, "coverage_calibrated"),
            ("anomaly", A, "anomaly_coverage_calibrated"),
        ):
            lo, _, hi = widen(points[f"lo_{level}"], points["p50"], points[f"hi_{level}"], f[key])
            row[name] = coverage(points["y"], lo, hi)
    else:
        row["coverage_calibrated"] = row["anomaly_coverage_calibrated"] = np.nan
    if len(sums):
        row["sum_coverage_raw"] = coverage(sums["y"], sums["lo"], sums["hi"])
        lo, _, hi = widen(sums["lo"], sums["p50"], sums["hi"], f["sum"])
        row["sum_coverage_calibrated"] = coverage(sums["y"], lo, hi)
    else:
        row["sum_coverage_raw"] = row["sum_coverage_calibrated"] = np.nan
    return row


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
    tasks = _series_tasks(frame, fermi, cfg)
    if not tasks:
        raise ValueError(
            f"no daily series to forecast up to {as_of.date()}: is fct_llm_calls empty or are "
            "all calls after --as-of?"
        )
    from forecasting.inputs import known_changes

    changes = known_changes(events, price_book)
    per_series = {
        m["unique_id"]: series_changes(changes, frame, m)
        for m, _ in tasks
        if m["metric"] in cfg.monthly_metrics
    }
    with worker_pool(cfg.workers) as pool:
        return _forecast_frame(
            frame, as_of, events, fermi, budgets, cfg, progress, score_anomalies, tasks, pool,
            per_series,
        )


def _forecast_frame(
    frame, as_of, events, fermi, budgets, cfg, progress, score_anomalies, tasks, pool, changes
) -> ForecastRun:
    # Spend first: tokens / calls series then reuse the spec their spend series chose (their
    # shape is spend's without the price), which saves the spec comparison fits.
    first = [i for i, (m, _) in enumerate(tasks) if m["metric"] not in cfg.cheap_metrics]
    rest = [i for i, (m, _) in enumerate(tasks) if m["metric"] in cfg.cheap_metrics]
    n = len(tasks)

    def counted(offset: int):
        if progress is None:
            return None
        return lambda phase, done, _total: progress(phase, offset + done, n)

    results: list = [None] * n
    done = parallel_map(
        forecast_series,
        [
            (*tasks[i], as_of, cfg, events, fermi, None, changes.get(tasks[i][0]["unique_id"]))
            for i in first
        ],
        cfg.workers,
        counted(0),
        "forecast",
        pool,
    )
    specs = {}
    for i, r in zip(first, done, strict=True):
        results[i] = r
        if r["meta"]["metric"] == "spend" and r["method"] == "prophet":
            specs[r["meta"]["unique_id"].split("|", 1)[1]] = r["spec"]
    done = parallel_map(
        forecast_series,
        [
            (
                *tasks[i],
                as_of,
                cfg,
                events,
                fermi,
                specs.get(tasks[i][0]["unique_id"].split("|", 1)[1]),
                changes.get(tasks[i][0]["unique_id"]),
            )
            for i in rest
        ],
        cfg.workers,
        counted(len(first)),
        "forecast",
        pool,
    )
    for i, r in zip(rest, done, strict=True):
        results[i] = r
    factors = calibration_factors(results, cfg)
    daily, monthly, backtest = _assemble(results, factors, budgets, as_of, cfg)
    monthly, monthly_bt = _monthly_publish(results, monthly, budgets, as_of, cfg)
    if len(monthly_bt):
        backtest = pd.concat([backtest, monthly_bt], ignore_index=True)

    anomalies = pd.DataFrame()
    if score_anomalies:
        by_uid = {r["meta"]["unique_id"]: r for r in results}
        floor = impact_floor(frame, cfg.anomaly_min_impact_share)
        a_tasks = [
            (
                m,
                h,
                as_of,
                cfg,
                events,
                by_uid[m["unique_id"]]["spec"],
                factors.get("prophet", {"anomaly": 1.0})["anomaly"],
                floor,
            )
            for m, h in tasks
            if m["metric"] == "spend" and m["series_level"] in ANOMALY_LEVELS and len(h)
        ]
        parts = parallel_map(anomaly_series, a_tasks, cfg.workers, progress, "anomalies", pool)
        parts = [p for p in parts if len(p)]
        anomalies = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        if not anomalies.empty:
            anomalies.insert(0, "as_of", as_of)
            anomalies["why"] = None
    return ForecastRun(as_of, daily, monthly, backtest, anomalies, factors)


def _assemble(results, factors, budgets, as_of, cfg):
    daily_parts, monthly_parts, bt_rows = [], [], []
    pooled: dict[tuple, list] = {}
    for r in results:
        meta, method = r["meta"], r["method"]
        f = factors.get(method, {"daily": 1.0, "sum": 1.0, "anomaly": 1.0})
        d = r["daily"]
        lo, mid, hi = widen(d["lo"], d["mid"], d["hi"], f["daily"])
        daily_parts.append(
            pd.DataFrame(
                {
                    **meta,
                    "ds": d["ds"],
                    "method": method,
                    "spec": r["spec"],
                    "model_version": r["version"],
                    "interval_level": cfg.interval_level,
                    "calibration_factor": f["daily"],
                    "p10": lo,
                    "p50": mid,
                    "p90": hi,
                }
            )
        )
        m = r["monthly"]
        k = f["sum"]
        fc_lo = m["p_lo"] - m["actual_to_date"]
        fc_mid = m["p50"] - m["actual_to_date"]
        fc_hi = m["p_hi"] - m["actual_to_date"]
        lo, mid, hi = widen(fc_lo, fc_mid, fc_hi, k)
        month_start = as_of.to_period("M").start_time
        mp = pd.DataFrame(
            {
                **meta,
                "month": m["month"],
                "month_kind": np.where(m["month"] == month_start, "current", "future"),
                "actual_to_date": m["actual_to_date"],
                "forecast_days": m["forecast_days"],
                "p10": m["actual_to_date"] + lo,
                "p50": m["actual_to_date"] + mid,
                "p90": m["actual_to_date"] + hi,
                "interval_level": cfg.interval_level,
                "method": method,
                "spec": r["spec"],
                "model_version": r["version"],
                "calibration_factor": k,
            }
        )
        budget = (
            budgets.get(meta.get("feature"))
            if (meta["series_level"] == "feature" and meta["metric"] == "spend")
            else None
        )
        mp["monthly_budget_usd"] = np.nan
        mp["prob_over_budget"] = np.nan
        mp["budget_status"] = None
        if budget is not None and not pd.isna(budget):
            paths = [
                m_mid + k * (np.asarray(p) - m_mid)
                for p, m_mid in zip(m["paths"], m["p50"], strict=True)
            ]
            mp["monthly_budget_usd"] = float(budget)
            mp["prob_over_budget"] = [float(np.mean(p > budget)) for p in paths]
            mp["budget_status"] = np.select(
                [mp["p10"] > budget, mp["p90"] > budget], ["over", "at_risk"], "within"
            )
        monthly_parts.append(mp)
        if len(r["points"]):
            for phase in ("calibration", "holdout"):
                pts = r["points"][r["points"]["phase"] == phase]
                sums = r["sums"][r["sums"]["phase"] == phase]
                row = {
                    **meta,
                    "method": method,
                    "spec": r["spec"],
                    "model_version": r["version"],
                    "phase": phase,
                    **_backtest_row(pts, sums, f, cfg),
                }
                bt_rows.append(row)
                pooled.setdefault((method, phase), []).append((pts, sums))
    for (method, phase), items in sorted(pooled.items()):
        pts = pd.concat([p for p, _ in items], ignore_index=True)
        sums = pd.concat([s for _, s in items], ignore_index=True)
        row = {c: None for c in META_COLUMNS}
        row.update(
            unique_id=f"__pooled__|{method}",
            series_level="pooled",
            metric="all",
            method=method,
            spec=None,
            model_version=model_version(method),
            phase=phase,
            **_backtest_row(pts, sums, factors[method], cfg),
        )
        row["n_series"] = len(items)
        bt_rows.append(row)
    daily = pd.concat(daily_parts, ignore_index=True)
    monthly = pd.concat(monthly_parts, ignore_index=True)
    # No series long enough for a backtest cutoff (a short history): an empty table with its
    # columns, not a frame without them.
    backtest = pd.DataFrame(bt_rows, columns=None if bt_rows else [*META_COLUMNS, "method"])
    for df in (daily, monthly, backtest):
        df.insert(0, "as_of", as_of)
        df["unit"] = df["metric"].map(METRICS).fillna("mixed")
    return daily, monthly, backtest


def _monthly_publish(results, monthly, budgets, as_of, cfg):
    """Replace each competing series' months by its monthly winner with the conformal band, and
    build the ``phase = 'monthly'`` backtest rows (per series x horizon, pooled per level)."""
    from statistics import NormalDist

    from forecasting.monthly import METHODS, evaluate, month_bands

    ev = evaluate(results, cfg)
    dates = horizon_dates(as_of, cfg.horizon_months)
    z = NormalDist().inv_cdf((1 + cfg.interval_level) / 2)
    monthly = monthly.copy()
    for col in ("backtest_status", "events_applied"):
        monthly[col] = None
    for col in ("backtest_origins", "backtest_coverage", "backtest_mdape", "run_rate_mdape",
                "volatility"):
        monthly[col] = np.nan
    monthly.loc[monthly["method"] == "fermi", "backtest_status"] = "estimate"
    bt_rows = []
    for r in results:
        if "final_points" not in r:
            continue
        meta = r["meta"]
        uid = meta["unique_id"]
        v = ev["series"].get(uid) or {
            "status": "too_short", "chosen": "fallback", "n_origins": 0, "per_h": {},
            "errors": {}, "best_by_error": None,
        }
        idx = monthly.index[monthly["unique_id"] == uid]
        rows = monthly.loc[idx]
        if v["status"] == "too_short":
            # Not enough months to choose on: the daily model's months (Prophet with its level
            # steps where it could fit, else the fallback), never narrower than the rule of
            # thumb, and saying so.
            chosen = r["method"]
            key = (meta["metric"], meta["series_level"], "run_rate")
            q = ev["q"].get(key)
            scale = {h: ev["c"].get((*key, h), np.nan) * r["vol_now"]
                     for h in range(1, cfg.horizon_months + 1)}
            point = r["final_points"]["prophet" if chosen == "prophet" else "fallback"]
            bands = month_bands(rows["month"], rows["actual_to_date"].to_numpy(float), dates,
                                point, scale, q, as_of, cfg.too_short_log_halfwidth)
            atd = rows["actual_to_date"].to_numpy(float)
            f = rows["p50"].to_numpy(float) - atd
            half = bands["log_halfwidth"].to_numpy(float)
            bands["p50"] = rows["p50"].to_numpy(float)
            bands["forecast_sum"] = f
            bands["p10"] = np.minimum(rows["p10"].to_numpy(float), atd + f * np.exp(-half))
            bands["p90"] = np.maximum(rows["p90"].to_numpy(float), atd + f * np.exp(half))
        else:
            chosen = v["chosen"]
            q = ev["q"].get((meta["metric"], meta["series_level"], "published"))
            bands = month_bands(
                rows["month"], rows["actual_to_date"].to_numpy(float), dates,
                r["final_points"][chosen], v["scale"], q, as_of, cfg.too_short_log_halfwidth,
            )
        spec = r["spec"] if chosen == "prophet" else None
        monthly.loc[idx, "p10"] = bands["p10"].to_numpy()
        monthly.loc[idx, "p50"] = bands["p50"].to_numpy()
        monthly.loc[idx, "p90"] = bands["p90"].to_numpy()
        monthly.loc[idx, "method"] = chosen
        monthly.loc[idx, "spec"] = spec
        monthly.loc[idx, "model_version"] = model_version(chosen, spec)
        monthly.loc[idx, "calibration_factor"] = bands["q"].to_numpy()
        monthly.loc[idx, "backtest_status"] = v["status"]
        monthly.loc[idx, "backtest_origins"] = v["n_origins"]
        monthly.loc[idx, "volatility"] = r["vol_now"]
        monthly.loc[idx, "events_applied"] = r.get("events_applied")
        if v["status"] == "backtested":
            cov = [v["per_h"].get(max(int(h), 1), {}).get("published_coverage", np.nan)
                   for h in bands["horizon"]]
            err = [v["per_h"].get(max(int(h), 1), {}).get(f"{chosen}_mdape", np.nan)
                   for h in bands["horizon"]]
            rr = [v["per_h"].get(max(int(h), 1), {}).get("run_rate_mdape", np.nan)
                  for h in bands["horizon"]]
            n_h = [v["per_h"].get(max(int(h), 1), {}).get("n_origins", 0)
                   for h in bands["horizon"]]
            monthly.loc[idx, "backtest_origins"] = n_h  # the origins behind that horizon
            monthly.loc[idx, "backtest_coverage"] = cov
            monthly.loc[idx, "backtest_mdape"] = err
            monthly.loc[idx, "run_rate_mdape"] = rr
        budget = monthly.loc[idx, "monthly_budget_usd"]
        if budget.notna().any():
            b = budget.to_numpy(float)
            atd = rows["actual_to_date"].to_numpy(float)
            f = bands["forecast_sum"].to_numpy(float)
            sigma = np.maximum(bands["log_halfwidth"].to_numpy(float) / z, 1e-9)
            with np.errstate(divide="ignore", invalid="ignore"):
                zz = (np.log(np.maximum(b - atd, 1e-12)) - np.log(np.maximum(f, 1e-12))) / sigma
            prob = np.where(b <= atd, 1.0, 1 - np.vectorize(NormalDist().cdf)(zz))
            monthly.loc[idx, "prob_over_budget"] = prob
            p10, p90 = bands["p10"].to_numpy(), bands["p90"].to_numpy()
            monthly.loc[idx, "budget_status"] = np.select(
                [p10 > b, p90 > b], ["over", "at_risk"], "within"
            )
        for h, row in sorted(v["per_h"].items()):
            out = {
                **meta, "as_of": as_of, "method": chosen, "spec": spec,
                "model_version": model_version(chosen, spec), "phase": "monthly",
                "horizon_months": h, "origin_kind": r["monthly_kind"],
                "n_origins": row["n_origins"], "backtest_status": v["status"],
                "interval_level": cfg.interval_level,
                "monthly_coverage": row.get("published_coverage", np.nan),
                "monthly_mdape": row.get(f"{chosen}_mdape", np.nan),
                "calibration_factor": (q or {}).get(h, np.nan),
            }
            for m in METHODS:
                out[f"{m}_mdape"] = row.get(f"{m}_mdape", np.nan)
                out[f"{m}_coverage"] = row.get(f"{m}_coverage", np.nan)
            bt_rows.append(out)
        if not v["per_h"]:
            bt_rows.append({
                **meta, "as_of": as_of, "method": chosen, "spec": spec,
                "model_version": model_version(chosen, spec), "phase": "monthly",
                "horizon_months": 1, "origin_kind": r["monthly_kind"], "n_origins": 0,
                "backtest_status": "too_short", "interval_level": cfg.interval_level,
            })
    bt = pd.DataFrame(bt_rows)
    if len(bt):
        bt["unit"] = bt["metric"].map(METRICS).fillna("mixed")
        bt = pd.concat([bt, _monthly_pooled(bt, as_of, cfg)], ignore_index=True)
    return monthly, bt


def _monthly_pooled(bt: pd.DataFrame, as_of, cfg) -> pd.DataFrame:
    """One row per metric x level x horizon over the backtested series: their published
    methods' coverage and median error (means over series), the run-rate's, and the methods."""
    from forecasting.monthly import METHODS

    ok = bt[bt["backtest_status"] == "backtested"]
    rows = []
    for (metric, level, h), g in ok.groupby(["metric", "series_level", "horizon_months"]):
        chosen = g["method"].value_counts()
        row = {c: None for c in META_COLUMNS}
        row.update(
            as_of=as_of, unique_id=f"__pooled__|monthly|{metric}|{level}", series_level="pooled",
            metric=metric, unit=METRICS.get(metric, "mixed"), phase="monthly",
            method="per_series", pooled_level=level, horizon_months=h,
            n_series=len(g), n_origins=int(g["n_origins"].sum()),
            backtest_status="backtested", interval_level=cfg.interval_level,
            origin_kind=",".join(sorted(set(g["origin_kind"]))),
            monthly_coverage=float(g["monthly_coverage"].mean()),
            monthly_mdape=float(g["monthly_mdape"].median()),
            methods_chosen=", ".join(f"{m} {n}" for m, n in chosen.items()),
        )
        for m in METHODS:
            row[f"{m}_mdape"] = float(g[f"{m}_mdape"].median())
            row[f"{m}_coverage"] = float(g[f"{m}_coverage"].mean())
        rows.append(row)
    return pd.DataFrame(rows)
