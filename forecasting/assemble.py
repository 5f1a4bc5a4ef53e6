"""Assemble: the per-series results of a run (``fit.forecast_series``) and the pooled factors
(``calibrate``) become the published frames -- ``forecast_daily``, ``forecast_monthly`` and
``forecast_backtest`` -- with bands widened, budgets judged, and, for the series in the monthly
competition, their months replaced by the winner's with its conformal band
(``apply_monthly_winners``; the choice and the quantiles are ``monthly.evaluate``)."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

from forecasting.calibrate import backtest_row
from forecasting.config import METRICS, ForecastConfig, model_version
from forecasting.intervals import widen
from forecasting.monthly import METHODS, evaluate, month_bands
from forecasting.tasks import META_COLUMNS, horizon_dates


def assemble(
    results: list[dict], factors: dict, budgets: pd.Series, as_of: pd.Timestamp,
    cfg: ForecastConfig,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The daily model's tables: ``forecast_daily`` (bands widened by the method's daily
    factor), ``forecast_monthly`` (month sums of the paths widened by the sum factor, budget
    probabilities from the widened paths) and ``forecast_backtest`` (a row per series and
    phase, plus ``__pooled__|<method>`` rows)."""
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
                    **backtest_row(pts, sums, f, cfg),
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
            **backtest_row(pts, sums, factors[method], cfg),
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


def apply_monthly_winners(
    results: list[dict], monthly: pd.DataFrame, as_of: pd.Timestamp, cfg: ForecastConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Replace each competing series' months by its monthly winner with the conformal band, and
    build the ``phase = 'monthly'`` backtest rows (per series x horizon, pooled per level)."""
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
