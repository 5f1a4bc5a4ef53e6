"""Intervals from sample paths: daily bands, monthly sums, conformal widening, coverage.

Month totals are quantiles of the SUM of each sample path over the month's days. Adding daily
p90s instead gives a far wider (wrong) band, because daily errors partly cancel in a sum;
``tests/test_forecasting.py`` pins the difference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def band(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower, median, upper) of a central ``level`` interval over the last axis."""
    a = (1 - level) / 2
    lo, mid, hi = np.quantile(samples, [a, 0.5, 1 - a], axis=-1)
    return lo, mid, hi


def widen(lo, mid, hi, factor: float):
    """Scale both half-widths around the median by ``factor`` (conformal widening); bounds stay
    >= 0 since spend, tokens and calls cannot be negative."""
    lo = np.asarray(lo, float)
    hi = np.asarray(hi, float)
    mid = np.asarray(mid, float)
    return np.clip(mid - factor * (mid - lo), 0, None), mid, mid + factor * (hi - mid)


def scores(y, lo, mid, hi) -> np.ndarray:
    """Nonconformity: the half-width multiple needed for the interval to cover ``y``."""
    y, lo, mid, hi = (np.asarray(v, float) for v in (y, lo, mid, hi))
    up = y >= mid
    half = np.where(up, hi - mid, mid - lo)
    dist = np.abs(y - mid)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(half > 0, dist / half, np.where(dist > 0, np.inf, 0.0))
    return s


def conformal_factor(s: np.ndarray, level: float, empty: float = 1.0) -> float:
    """Split-conformal multiplier: the ceil((n+1)L)-th smallest score (the largest finite one
    when that rank lands on an infinite score); ``empty`` when there is no score (1.0: keep the
    model's own band; the monthly pools ask for NaN, "not calibrated")."""
    s = np.asarray(s, float)
    s = np.sort(s[~np.isnan(s)])
    n = len(s)
    if n == 0:
        return empty
    k = int(np.ceil((n + 1) * level))
    value = s[min(k, n) - 1]
    if not np.isfinite(value):
        finite = s[np.isfinite(s)]
        return float(finite[-1]) if len(finite) else 1.0
    return float(value)


def coverage(y, lo, hi) -> float:
    """Share of actuals inside [lo, hi] (NaN when there is nothing to score)."""
    y, lo, hi = (np.asarray(v, float) for v in (y, lo, hi))
    if y.size == 0:
        return float("nan")
    return float(np.mean((y >= lo) & (y <= hi)))


def monthly_from_samples(
    dates: pd.DatetimeIndex,
    samples: np.ndarray,
    level: float,
    actual_to_date: dict | None = None,
    factor: float = 1.0,
) -> pd.DataFrame:
    """Per calendar month: sum each sample path over the month's forecast days, add the
    month's actual-to-date (current month), then take the band (widened by ``factor``).

    Returns month, actual_to_date, forecast_days, p_lo, p50, p_hi and the month totals of
    every path (``paths``: an object column, used for budget probabilities)."""
    dates = pd.DatetimeIndex(dates)
    months = dates.to_period("M")
    codes, uniques = pd.factorize(months, sort=True)
    sums = np.zeros((len(uniques), samples.shape[1]))
    np.add.at(sums, codes, samples)
    actual_to_date = actual_to_date or {}
    rows = []
    for i, month in enumerate(uniques):
        actual = float(actual_to_date.get(month.start_time, 0.0))
        lo, mid, hi = band(sums[i], level)
        lo, mid, hi = widen(lo, mid, hi, factor)
        rows.append(
            {
                "month": month.start_time,
                "actual_to_date": actual,
                "forecast_days": int(np.sum(codes == i)),
                "p_lo": actual + float(lo),
                "p50": actual + float(mid),
                "p_hi": actual + float(hi),
                "paths": actual + mid + factor * (sums[i] - mid),
            }
        )
    return pd.DataFrame(rows)
