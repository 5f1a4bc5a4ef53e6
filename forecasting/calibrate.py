"""Calibrate: split-conformal factors per method from the EARLY (calibration) cutoffs of every
series' backtest, pooled across series -- daily at the interval level, horizon sums (months) and
daily at the anomaly level (outlier-robust) -- and each backtest row's coverage before and after
widening by them (the later, held-out cutoffs judge them honestly).

The monthly figures have their own calibration (log-scale conformal quantiles per level and
horizon): ``monthly.evaluate``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.anomalies import robust_own_factor
from forecasting.backtest import interval_coverage, point_metrics
from forecasting.config import ForecastConfig
from forecasting.intervals import conformal_factor, coverage, scores, widen


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


def backtest_row(points: pd.DataFrame, sums: pd.DataFrame, f: dict, cfg: ForecastConfig) -> dict:
    """One ``forecast_backtest`` row of a series (or a pool) and phase: point errors, raw and
    calibrated coverage daily / of horizon sums / at the anomaly level, the factors, cutoffs."""
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
