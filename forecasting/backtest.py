"""Backtest: rolling cutoffs, then coverage, MAPE and MASE against a 7-day seasonal naive.

A cutoff is the last day a fit sees; it then forecasts the next ``horizon`` days. Early
cutoffs (``phase='calibration'``) choose the spec and feed conformal calibration; later
cutoffs (``phase='holdout'``) report coverage before and after calibration honestly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from forecasting.intervals import band, coverage

SEASON = 7


def rolling_cutoffs(
    first_day: pd.Timestamp,
    last_day: pd.Timestamp,
    n: int,
    horizon: int,
    period: int,
    min_train: int,
) -> list[pd.Timestamp]:
    """Up to ``n`` cutoffs, oldest first, the newest leaving ``horizon`` days to score; cutoffs
    with fewer than ``min_train`` days of training are dropped."""
    out = []
    for i in range(n):
        c = last_day - pd.Timedelta(days=horizon + i * period)
        if (c - first_day).days + 1 >= min_train:
            out.append(c)
    return sorted(out)


def split_phases(cutoffs: list[pd.Timestamp]) -> tuple[list, list]:
    """Early half calibrates (rounded up), the later half is held out."""
    n_cal = (len(cutoffs) + 1) // 2
    return cutoffs[:n_cal], cutoffs[n_cal:]


def backtest_points(
    history: pd.DataFrame,
    fit: Callable[[pd.DataFrame], object],
    cutoffs: list[pd.Timestamp],
    horizon: int,
    n_samples: int,
    levels: tuple[float, ...],
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Forecast every cutoff's next ``horizon`` days with a fresh fit on the days up to it.

    Returns (points, sums): one row per cutoff x day with y, p50, the seasonal-naive forecast,
    the in-sample MASE scale and lo/hi per level; and one row per cutoff with the horizon SUM of
    actuals and its band from summed sample paths."""
    h = history.sort_values("ds")
    points, sums = [], []
    for j, cutoff in enumerate(cutoffs):
        train = h[h["ds"] <= cutoff]
        test = h[(h["ds"] > cutoff) & (h["ds"] <= cutoff + pd.Timedelta(days=horizon))]
        if test.empty or len(train) < SEASON + 1:
            continue
        model = fit(train)
        paths = model.sample(pd.DatetimeIndex(test["ds"]), n_samples, seed=seed + j)
        y_train = train["y"].to_numpy(float)
        last_week = y_train[-SEASON:]
        steps = np.arange(len(test))
        pts = pd.DataFrame(
            {
                "cutoff": cutoff,
                "ds": test["ds"].to_numpy(),
                "y": test["y"].to_numpy(float),
                "snaive": last_week[steps % SEASON],
                "scale": np.nanmean(np.abs(y_train[SEASON:] - y_train[:-SEASON])),
                "method": model.method,
                "spec": model.spec,
            }
        )
        for level in levels:
            lo, mid, hi = band(paths, level)
            pts[f"lo_{level}"], pts[f"hi_{level}"] = lo, hi
            pts["p50"] = mid
        points.append(pts)
        total = paths.sum(axis=0)
        lo, mid, hi = band(total, levels[0])
        sums.append({"cutoff": cutoff, "y": float(pts["y"].sum()), "p50": mid, "lo": lo, "hi": hi})
    return (
        pd.concat(points, ignore_index=True) if points else pd.DataFrame(),
        pd.DataFrame(sums),
    )


def point_metrics(points: pd.DataFrame) -> dict:
    """MAPE (days with y > 0), MASE (in-sample seasonal-naive scale) and the ratio of the
    model's MAE to the seasonal-naive forecast's MAE on the same days (< 1: better)."""
    if points.empty:
        return {"n_points": 0, "mape": np.nan, "mase": np.nan, "mae_ratio_vs_snaive": np.nan}
    err = np.abs(points["y"] - points["p50"])
    pos = points["y"] > 0
    mape = float((err[pos] / points.loc[pos, "y"]).mean()) if pos.any() else np.nan
    scale = points["scale"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mase_terms = err.to_numpy() / scale
    mase_terms = mase_terms[np.isfinite(mase_terms)]
    snaive_mae = float(np.abs(points["y"] - points["snaive"]).mean())
    return {
        "n_points": len(points),
        "mape": mape,
        "mase": float(mase_terms.mean()) if len(mase_terms) else np.nan,
        "mae_ratio_vs_snaive": float(err.mean() / snaive_mae) if snaive_mae > 0 else np.nan,
    }


def interval_coverage(points: pd.DataFrame, level: float) -> float:
    if points.empty:
        return float("nan")
    return coverage(points["y"], points[f"lo_{level}"], points[f"hi_{level}"])
