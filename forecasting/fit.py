"""Fit one series (pass 1 of a run, in a pool worker): choose the method, backtest on rolling
cutoffs (both Prophet specs on the early cutoffs, the better one on the later ones), the final
fit and its raw (uncalibrated) sample paths over the horizon, the plausibility guard, and for
spend the monthly competition's backtest (``forecasting/monthly.py``).

``fit_all`` runs every series through the pool in two passes: spend first, then tokens / calls
reusing the spec their spend series chose (their shape is spend's without the price), which
saves the spec comparison fits.

The model families themselves (Prophet specs, fallback, Fermi) are in ``models.py``.
"""

from __future__ import annotations

import zlib
from dataclasses import replace
from functools import partial

import numpy as np
import pandas as pd

from forecasting.backtest import backtest_points, rolling_cutoffs, split_phases
from forecasting.changes import change_multiplier
from forecasting.config import ForecastConfig, model_version
from forecasting.inputs import events_for_series
from forecasting.intervals import band, monthly_from_samples
from forecasting.models import fermi_samples, fit_fallback, fit_prophet, is_flat
from forecasting.monthly import BASELINES, POINT, monthly_backtest, volatility
from forecasting.parallel import Progress, parallel_map
from forecasting.tasks import RunInputs, SeriesTask, horizon_dates

# Guard: the last 28 days of the horizon may not average more than MAX_GROWTH x the last
# 14 days' run rate (p50), nor have a p90 above MAX_SPREAD x its p50.
MAX_GROWTH = 2.0
MAX_SPREAD = 3.0


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


def _plausible(model, paths, *, history, dates, spec, make_fit, cfg, seed):
    """Keep the chosen spec unless its projection is implausible; then the other trend spec,
    then no trend at all (``flat``: level, steps and weekly pattern)."""
    if not implausible(paths, history):
        return model, paths
    for alt in [s for s in cfg.specs if s != spec] + ["flat"]:
        m = make_fit(alt)(history)
        p = m.sample(dates, cfg.n_samples, seed=seed)
        if alt == "flat" or not implausible(p, history):
            return m, p
    return model, paths  # unreachable: flat is always accepted


def _backtest(task: SeriesTask, run: RunInputs, method: str, make_fit, seed: int):
    """Rolling-cutoff backtest of one series: (spec, points, sums); points and sums carry
    ``phase`` (calibration = early cutoffs, holdout = later ones), empty without 2 cutoffs.
    For Prophet the spec is the hint, else chosen on the last early cutoff."""
    cfg, history, spec_hint = run.cfg, task.history, task.spec_hint
    n_cutoffs = (
        min(cfg.cheap_cutoffs, cfg.backtest_cutoffs)
        if task.meta["metric"] in cfg.cheap_metrics
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
        levels=(cfg.interval_level, cfg.anomaly_level),
        seed=seed,
    )
    spec = None
    if method == "prophet":
        spec = spec_hint if spec_hint in cfg.specs else cfg.specs[0]
        if early and spec_hint in cfg.specs:
            pts_e, sums_e = bt(make_fit(spec), early)
        elif early:
            # The spec is chosen on the last early cutoff; the other early
            # cutoffs are then run with the chosen spec only (saves a fit per cutoff).
            # Judged on the error of the horizon SUM (what months are made of), the daily
            # MAE breaking ties: a spec that is good day by day but drifts loses.
            best = None
            for s in cfg.specs:
                pts, sums = bt(make_fit(s), early[-1:])
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
                more_p, more_s = bt(make_fit(spec), early[:-1])
                pts_e = pd.concat([more_p, pts_e], ignore_index=True)
                sums_e = pd.concat([more_s, sums_e], ignore_index=True)
    elif early:
        pts_e, sums_e = bt(fit_fallback, early)
    if not early:
        return spec, pd.DataFrame(), pd.DataFrame()
    pts_l, sums_l = bt(make_fit(spec), late)
    points = pd.concat(
        [pts_e.assign(phase="calibration"), pts_l.assign(phase="holdout")], ignore_index=True
    )
    sums = pd.concat(
        [sums_e.assign(phase="calibration"), sums_l.assign(phase="holdout")], ignore_index=True
    )
    return spec, points, sums


def forecast_series(task: SeriesTask, run: RunInputs) -> dict:
    """Pass 1 for one series: backtest, choose the spec, final fit, raw (uncalibrated) bands
    and month-sum paths; for spend, the monthly competition (forecasting/monthly.py). Never
    raises for short or flat data (falls back)."""
    meta, history, cfg, as_of = task.meta, task.history, run.cfg, run.as_of
    method = choose_method(meta, history, cfg, run.fermi)
    ev = events_for_series(run.events, meta.get("provider"), meta.get("feature"))
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
        make_fit = partial(_fitter, method, events=ev, n_samples=cfg.n_samples)
        spec, out["points"], out["sums"] = _backtest(task, run, method, make_fit, seed)
        out["spec"] = spec
        model = make_fit(spec)(history)
        paths = model.sample(dates, cfg.n_samples, seed=seed)
        if model.method == "prophet":
            model, paths = _plausible(
                model, paths, history=history, dates=dates, spec=spec, make_fit=make_fit,
                cfg=cfg, seed=seed,
            )
        out["method"] = model.method
        out["spec"] = model.spec
        if meta["metric"] in cfg.monthly_metrics:
            out.update(_monthly_competition(task, model, dates, ev, cfg))
    else:
        paths = fermi_samples(
            run.fermi.loc[meta["feature"]], meta["metric"], dates, cfg.n_samples, seed
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


def _monthly_competition(task: SeriesTask, final_model, dates, ev, cfg: ForecastConfig) -> dict:
    """Backtest next month's sum for the baselines (and Prophet when it is the daily model),
    and each one's point forecast over the horizon (known changes applied)."""
    history, changes = task.history, list(task.changes)
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


def fit_all(
    tasks: list[SeriesTask], run: RunInputs, progress: Progress | None = None, pool=None
) -> list[dict]:
    """``forecast_series`` for every task (results in task order) on ``run.cfg.workers``
    processes (``pool``: an open one to reuse). Spend first; tokens / calls then get the spec
    their spend series chose as ``spec_hint``."""
    cheap = run.cfg.cheap_metrics
    first = [i for i, t in enumerate(tasks) if t.meta["metric"] not in cheap]
    rest = [i for i, t in enumerate(tasks) if t.meta["metric"] in cheap]
    n = len(tasks)
    results: list = [None] * n
    specs: dict[str, str] = {}
    offset = 0
    for batch in (first, rest):
        counted = None
        if progress is not None:
            counted = partial(_counted, progress=progress, offset=offset, total=n)
        done = parallel_map(
            forecast_series,
            [(replace(tasks[i], spec_hint=specs.get(tasks[i].shape_key)), run) for i in batch],
            run.cfg.workers,
            counted,
            "forecast",
            pool,
        )
        for i, r in zip(batch, done, strict=True):
            results[i] = r
            if r["meta"]["metric"] == "spend" and r["method"] == "prophet":
                specs[tasks[i].shape_key] = r["spec"]
        offset += len(batch)
    return results


def _counted(phase: str, done: int, _total: int, *, progress: Progress, offset: int, total: int):
    """Progress over both passes: a pass's count shifted by the tasks of the passes before."""
    progress(phase, offset + done, total)
