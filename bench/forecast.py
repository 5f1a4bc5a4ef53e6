"""Benchmark: fit + backtest (3 rolling cutoffs) + monthly competition + final forecast for 200
daily series.

Prints series per second, pooled interval coverage before/after conformal calibration
(calibration cutoffs and held-out cutoffs), MASE and the MAE ratio to a 7-day seasonal naive, and
the monthly competition's backtest of next month's sum (coverage, error vs run-rate, methods).

    .venv/bin/python bench/forecast.py [--series 200] [--days 120] [--workers 2] [--samples 1000]

Series are synthetic (forecasting.synthetic.synthetic_series): weekly seasonality, trend,
log-normal noise, a launch step in a third of them and a spike in a fifth of them.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from datetime import date

import numpy as np
import pandas as pd

from forecasting.config import ForecastConfig
from forecasting.pipeline import forecast_frame
from forecasting.synthetic import synthetic_series


def _cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (the pool's workers)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def make_series(n: int, days: int, end: date, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(n):
        parts.append(
            synthetic_series(
                f"spend|feature|feature=f{i:03d}",
                end,
                days=days,
                level=float(rng.lognormal(4, 1)),
                trend_per_day=float(rng.normal(0.002, 0.004)) * 100,
                weekly_amplitude=float(rng.uniform(0, 0.5)),
                noise=float(rng.uniform(0.03, 0.25)),
                launch_day=int(rng.integers(days // 3, days - 30)) if i % 3 == 0 else None,
                launch_lift=float(rng.uniform(0.3, 1.5)),
                spike_day=int(rng.integers(30, days - 20)) if i % 5 == 0 else None,
                seed=seed * 1000 + i,
                series_level="feature",
                feature=f"f{i:03d}",
            )
        )
    frame = pd.concat(parts, ignore_index=True)
    frame["y"] = frame["y"].clip(lower=0)
    return frame


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=200)
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--cutoffs", type=int, default=3)
    args = ap.parse_args()

    end = date(2026, 11, 20)
    frame = make_series(args.series, args.days, end)
    cfg = ForecastConfig(
        workers=args.workers,
        n_samples=args.samples,
        backtest_cutoffs=args.cutoffs,
        levels=("feature",),
        metrics=("spend",),
    )
    empty_fermi = pd.DataFrame(columns=["spread"]).rename_axis("feature")
    events = pd.DataFrame(columns=["ds", "event_name", "kind", "provider", "feature"])
    cpu0 = _cpu_seconds()
    t0 = time.perf_counter()
    run = forecast_frame(
        frame, end, events, empty_fermi, pd.Series(dtype=float), cfg, score_anomalies=False
    )
    elapsed = time.perf_counter() - t0
    cpu = _cpu_seconds() - cpu0

    bt = run.backtest
    daily = bt["phase"].isin(["calibration", "holdout"])
    pooled = bt[daily & (bt["series_level"] == "pooled")].set_index(["method", "phase"])
    per = bt[bt["series_level"] != "pooled"]
    print(
        f"series: {args.series} x {args.days} days, cutoffs {args.cutoffs} "
        f"(horizon {cfg.backtest_horizon_days} d), samples {args.samples}, workers {args.workers}"
    )
    print(f"elapsed: {elapsed:.1f} s  ->  {args.series / elapsed:.2f} series/s")
    load = os.getloadavg()[0]
    print(
        f"cpu: {cpu:.1f} s (parent + workers) -> {args.series / cpu:.2f} series per cpu-second; "
        f"load average at the end {load:.1f} on {os.cpu_count()} cores"
    )
    print("specs chosen:", run.daily.drop_duplicates("unique_id")["spec"].value_counts().to_dict())
    for (method, phase), r in pooled.iterrows():
        print(
            f"{method:8s} {phase:11s} n={int(r['n_points']):5d}  "
            f"coverage@{r['interval_level']:.0%} raw {r['coverage_raw']:.3f} -> calibrated "
            f"{r['coverage_calibrated']:.3f} (factor {r['calibration_factor']:.2f})  "
            f"14-day-sum coverage raw {r['sum_coverage_raw']:.3f} -> "
            f"{r['sum_coverage_calibrated']:.3f} (factor {r['sum_calibration_factor']:.2f})  "
            f"coverage@{r['anomaly_level']:.0%} raw {r['anomaly_coverage_raw']:.3f} -> "
            f"{r['anomaly_coverage_calibrated']:.3f}"
        )
    monthly = bt[(bt["phase"] == "monthly") & (bt["series_level"] == "pooled")]
    for r in monthly.sort_values("horizon_months").itertuples():
        print(
            f"monthly h={int(r.horizon_months)} ({r.origin_kind} origins, {int(r.n_origins)} "
            f"series-origins): 80% band held {r.monthly_coverage:.3f} (leave-one-series-out); "
            f"median abs % error {r.monthly_mdape:.3f} vs run-rate {r.run_rate_mdape:.3f}, "
            f"seasonal naive {r.seasonal_naive_mdape:.3f}, theta {r.theta_mdape:.3f}, "
            f"prophet {r.prophet_mdape:.3f}; chosen: {r.methods_chosen}"
        )
    per = per[per["phase"].isin(["calibration", "holdout"])]
    hold = per[per["phase"] == "holdout"]
    print(
        f"held-out per series: MASE median {hold['mase'].median():.3f} mean {hold['mase'].mean():.3f}; "
        f"MAE / seasonal-naive MAE median {hold['mae_ratio_vs_snaive'].median():.3f}; "
        f"MAPE median {hold['mape'].median():.3f}"
    )


if __name__ == "__main__":
    main()
