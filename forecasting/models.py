"""Model families: three ways to produce predictive sample paths for future days (``fit.py``
runs them per series).

- ``fit_prophet``: Prophet with weekly seasonality, holidays and launch / price-change steps from
  the events seed; ``spec`` is ``additive`` (y as is) or ``log`` (log(y + c): multiplicative
  weekly effect and growth). Chosen per series by backtest.
- ``fit_fallback``: seasonal-naive level (same weekday, last 3 weeks) or the recent mean for
  short series, with bootstrapped empirical residuals. Never fails on short or flat series.
- ``fermi_samples``: daily active users x calls per user x tokens per call x price, each
  factor log-normal with the seed's p90/p50 spread; one level draw per path (wide on purpose).

Every forecaster returns an array ``(n_days, n_samples)`` on the original scale, clipped at 0.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from forecasting.config import model_version
from forecasting.inputs import STEP_KINDS

_Z90 = 1.2815515655446004  # standard normal quantile at 0.9
SPECS = ("additive", "log", "flat")


def quiet_prophet() -> None:
    """Silence cmdstanpy's per-fit INFO lines and prophet's plotly notice."""
    for name in ("cmdstanpy", "prophet", "prophet.plot", "prophet.models"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    stan = logging.getLogger("cmdstanpy")
    stan.propagate = False
    if not stan.handlers:  # cmdstanpy installs its INFO handler only when it finds none
        stan.addHandler(logging.NullHandler())


@dataclass
class Forecaster:
    method: str  # prophet | fallback | fermi
    spec: str | None
    model: object | None = None
    offset: float = 0.0
    step_dates: tuple = ()
    level: np.ndarray | None = None  # fallback: per-weekday level (7,)
    residuals: np.ndarray | None = None
    n_train: int = 0

    @property
    def version(self) -> str:
        return model_version(self.method, self.spec)

    def sample(self, dates: pd.DatetimeIndex, n_samples: int, seed: int = 0) -> np.ndarray:
        if self.method == "prophet":
            return _prophet_samples(self, dates, n_samples, seed)
        return _fallback_samples(self, dates, n_samples, seed)

    def point(self, dates: pd.DatetimeIndex) -> np.ndarray:
        """The daily point forecast (Prophet's yhat, no sampling; fallback's weekday level)."""
        dates = pd.DatetimeIndex(dates)
        if self.method != "prophet":
            return self.level[dates.day_of_week.to_numpy()].astype(float)
        future = pd.DataFrame({"ds": dates})
        for i, when in enumerate(self.step_dates):
            future[f"step_{i}"] = (future["ds"] >= when).astype(float)
        keep = self.model.uncertainty_samples
        self.model.uncertainty_samples = 0
        try:
            yhat = self.model.predict(future)["yhat"].to_numpy(float)
        finally:
            self.model.uncertainty_samples = keep
        if self.spec == "log":
            yhat = np.exp(np.clip(yhat, None, 50)) - self.offset
        return np.clip(yhat, 0, None)


def is_flat(y: np.ndarray) -> bool:
    """Too little signal for Prophet: constant, or mostly zero days."""
    y = np.asarray(y, dtype=float)
    return len(y) == 0 or float(np.nanstd(y)) == 0.0 or float(np.mean(y > 0)) < 0.5


def fit_prophet(
    history: pd.DataFrame,
    spec: str = "additive",
    events: pd.DataFrame | None = None,
    n_samples: int = 1000,
    min_days_after_step: int = 7,
    detect_shifts: bool = False,
) -> Forecaster:
    """Fit Prophet on ``history`` (``ds``, ``y``; NaN y = excluded day). A step event is used
    only with a week of data before it and ``min_days_after_step`` days from it.

    ``spec``: ``additive`` (y, linear trend), ``log`` (log(y + c), linear trend: multiplicative
    growth) or ``flat`` (y, no trend: level + steps + weekly; the guard's last resort when a
    trend extrapolates to an implausible month).
    ``detect_shifts``: also add a step at each level shift found in the history
    (``detect_level_shifts``), so an unlisted launch is a step, not a trend."""
    quiet_prophet()  # before the import: prophet.plot logs its plotly notice on import
    from prophet import Prophet

    if spec not in SPECS:
        raise ValueError(f"unknown spec {spec!r}: use one of {SPECS}")
    df = history[["ds", "y"]].copy()
    y = df["y"].to_numpy(dtype=float)
    offset = 0.0
    if spec == "log":
        positive = y[np.isfinite(y) & (y > 0)]
        offset = 0.05 * float(np.median(positive)) if len(positive) else 1.0
        df["y"] = np.log(np.clip(y, 0, None) + offset)
    start, end = df["ds"].min(), df["ds"].max()
    holidays, steps = None, []
    if events is not None and not events.empty:
        hol = events[events["kind"] == "holiday"]
        # Only holidays seen in training can be learned; the others would cost time for nothing.
        hol = hol[(hol["ds"] >= start) & (hol["ds"] <= end)]
        if not hol.empty:
            holidays = pd.DataFrame(
                {
                    "holiday": hol["event_name"],
                    "ds": hol["ds"],
                    "lower_window": 0,
                    "upper_window": 0,
                }
            )
        step = events[events["kind"].isin(STEP_KINDS)]
        # A step is learnable only with a week of data on each side of it.
        ok = (step["ds"] >= start + pd.Timedelta(days=7)) & (
            step["ds"] <= end - pd.Timedelta(days=6)
        )
        steps = sorted(set(step.loc[ok, "ds"]))
    if detect_shifts:
        for when in detect_level_shifts(history["ds"], y):
            if all(abs((when - s_).days) > 7 for s_ in steps):
                steps.append(when)
        steps = sorted(steps)
    m = Prophet(
        growth="flat" if spec == "flat" else "linear",
        weekly_seasonality=True,
        yearly_seasonality=False,
        daily_seasonality=False,
        holidays=holidays,
        # No changepoints in the last 20% of the history: a trend change seen only over the
        # last days is mostly noise or an unlisted step, and extrapolated over 3 months (and
        # compounded by the log spec) it becomes runaway growth.
        changepoint_range=0.8,
        # About one changepoint per fortnight: 25 on a month of data overfits and makes the
        # noise (and so the interval) look smaller than it is.
        n_changepoints=int(min(25, max(1, len(df) // 14))),
        uncertainty_samples=n_samples,
    )
    for i, when in enumerate(steps):
        name = f"step_{i}"
        m.add_regressor(name, standardize=False)
        df[name] = (df["ds"] >= when).astype(float)
    m.fit(df.dropna(subset=["y"]))
    return Forecaster("prophet", spec, m, offset, tuple(steps), n_train=int(df["y"].notna().sum()))


def detect_level_shifts(
    ds: pd.Series,
    y: np.ndarray,
    window: int = 14,
    min_after: int = 7,
    min_ratio: float = 1.4,
    z: float = 5.0,
    max_shifts: int = 2,
) -> list[pd.Timestamp]:
    """First days of sustained level shifts (launches, model switches) in a daily series.

    On log(y + c), the median of the ``window`` days before each candidate day is compared with
    the median of up to ``window`` days from it (7 or 14: whole weeks, so the weekly pattern
    cancels). A shift needs a ratio of at least ``min_ratio`` and ``z`` standard errors (noise
    from the weekday-differenced series, robust MAD). Medians keep a one-day spike (a runaway
    day) from looking like a shift; a gradual ramp never reaches the ratio within a window.
    The strongest shift is taken, then the next one at least ``window`` days away."""
    y = np.asarray(y, float)
    n = len(y)
    ok = np.isfinite(y)
    if n < window + min_after or ok.sum() < window + min_after:
        return []
    pos = y[ok & (y > 0)]
    if len(pos) == 0:
        return []
    zlog = np.log(np.clip(np.where(ok, y, np.nan), 0, None) + 0.05 * float(np.median(pos)))
    d7 = zlog[7:] - zlog[:-7]
    d7 = d7[np.isfinite(d7)]
    if len(d7) < 7:
        return []
    noise = 1.4826 * float(np.median(np.abs(d7 - np.median(d7)))) / np.sqrt(2)
    cand = np.arange(window, n - min_after + 1)  # index of the first day after the shift
    pre = np.nanmedian(sliding_window_view(zlog, window)[cand - window], axis=1)
    post_len = np.where(cand + window <= n, window, min_after)
    padded = np.concatenate([zlog, np.full(window, np.nan)])
    post_win = sliding_window_view(padded, window)[cand].copy()
    post_win[post_len[:, None] <= np.arange(window)[None, :]] = np.nan
    post = np.nanmedian(post_win, axis=1)
    diff = post - pre
    # The median's standard error is about 1.25 x the mean's.
    se = 1.25 * max(noise, 1e-6) * np.sqrt(1 / window + 1 / post_len)
    stat = np.abs(diff) / se
    valid = np.isfinite(stat) & (np.abs(diff) >= np.log(min_ratio)) & (stat >= z)
    dates = pd.DatetimeIndex(ds)
    # Placement: a week's mean on each side of a day (whole weeks, so the weekly pattern
    # cancels) differs most at the shift itself; refine the detected day within +-6 days.
    means = np.convolve(np.nan_to_num(zlog, nan=np.nanmedian(zlog)), np.ones(7) / 7, "valid")
    found: list[pd.Timestamp] = []
    while valid.any() and len(found) < max_shifts:
        best = int(cand[int(np.argmax(np.where(valid, stat, -np.inf)))])
        near = np.arange(max(7, best - 6), min(n - 7, best + 6) + 1)
        if len(near):
            jump = means[near] - means[near - 7]  # week from the day vs the week before it
            best = int(near[np.argmax(np.sign(diff[best - window]) * jump)])
        found.append(dates[best])
        valid &= np.abs(cand - best) >= window
    return sorted(found)


def _prophet_samples(f: Forecaster, dates, n_samples: int, seed: int) -> np.ndarray:
    future = pd.DataFrame({"ds": pd.DatetimeIndex(dates)})
    for i, when in enumerate(f.step_dates):
        future[f"step_{i}"] = (future["ds"] >= when).astype(float)
    f.model.uncertainty_samples = n_samples
    state = np.random.get_state()
    np.random.seed(seed)  # prophet draws from numpy's global generator
    try:
        draws = f.model.predictive_samples(future)["yhat"]
    finally:
        np.random.set_state(state)
    if f.spec == "log":
        draws = np.exp(np.clip(draws, None, 50)) - f.offset
    return np.clip(draws, 0, None)


def fit_fallback(history: pd.DataFrame) -> Forecaster:
    """Seasonal-naive (>= 21 days) or recent-mean level with empirical residuals."""
    h = history.dropna(subset=["y"])
    y = h["y"].to_numpy(dtype=float)
    dow = h["ds"].dt.day_of_week.to_numpy()
    if len(y) == 0:
        return Forecaster("fallback", None, level=np.zeros(7), residuals=np.zeros(1), n_train=0)
    if len(y) >= 21:
        recent = slice(len(y) - 21, len(y))
        sums = np.bincount(dow[recent], weights=y[recent], minlength=7)
        counts = np.bincount(dow[recent], minlength=7)
        level = np.where(counts > 0, sums / np.maximum(counts, 1), y[recent].mean())
        fitted_all = level[dow]
    else:
        level = np.full(7, y[-7:].mean())
        fitted_all = np.full(len(y), y.mean())
    residuals = y - fitted_all
    # A handful of residuals understates spread: inflate (n+1)/n-style and never below 10% of
    # the level, so a 10-day series gets an honestly wide band.
    n = len(residuals)
    scale = np.sqrt((n + 1) / max(n - 1, 1))
    floor = 0.1 * max(float(np.mean(np.abs(y))), 1e-9)
    if np.std(residuals) < floor:
        residuals = np.concatenate([residuals, [-floor * _Z90, floor * _Z90]])
    return Forecaster("fallback", None, level=level, residuals=residuals * scale, n_train=n)


def _fallback_samples(f: Forecaster, dates, n_samples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dates = pd.DatetimeIndex(dates)
    point = f.level[dates.day_of_week.to_numpy()]
    res = f.residuals if f.residuals is not None and len(f.residuals) else np.zeros(1)
    draws = point[:, None] + rng.choice(res, size=(len(dates), n_samples), replace=True)
    return np.clip(draws, 0, None)


def fermi_samples(
    estimate: pd.Series, metric: str, dates, n_samples: int, seed: int = 0
) -> np.ndarray:
    """Fermi paths for one new feature: factor draws are shared by all days of a path, with a
    10% day-to-day wobble; days before ``launch_date`` are 0."""
    rng = np.random.default_rng(seed)
    dates = pd.DatetimeIndex(dates)
    sigma = np.log(float(estimate["spread"])) / _Z90

    def draw(median: float) -> np.ndarray:
        return median * np.exp(rng.normal(0, sigma, n_samples))

    calls = draw(estimate["daily_active_users"]) * draw(estimate["calls_per_user"])
    tokens = calls * draw(estimate["tokens_per_call"])
    spend = tokens * draw(estimate["usd_per_million_tokens"]) / 1e6
    per_path = {"calls": calls, "tokens": tokens, "spend": spend}[metric]
    weekend = np.where(dates.day_of_week >= 5, 0.6, 1.0)
    wobble = np.exp(rng.normal(0, 0.1, (len(dates), n_samples)))
    live = (dates >= pd.Timestamp(estimate["launch_date"])).astype(float)
    return (live * weekend)[:, None] * per_path[None, :] * wobble
