"""Monthly competition: what is published is next month's SUM, so that is what is backtested.

For one series (``monthly_backtest``), at rolling origins (month ends when the history holds
enough of them, else weekly origins with a 30-day window), every candidate method forecasts the
next months' sums from the days up to the origin:

- ``run_rate``: the mean of the last 28 days times the days of the target (a spreadsheet);
- ``seasonal_naive``: the last 7 days repeated by weekday;
- ``theta``: the Theta method (SES on the weekday-adjusted series plus half its linear trend,
  Hyndman & Billah 2003), written here with numpy (statsforecast needs pandas < 3);
- ``prophet``: the series' Prophet fit (the spec the daily backtest chose), its ``yhat``.

``choose`` picks the method with the lowest median absolute % error of next month's sum; a
method other than the run-rate must beat it clearly (``margin`` and a majority of origins) or
the run-rate is published. ``evaluate`` scales each series' log errors (its own errors at the
other origins, shrunk towards the level's typical error per unit of volatility -- the RMS of
week-over-week log changes of weekly sums over the last 8 weeks -- and wider when volatility
surges, as after a level shift), pools the scaled scores of the published methods per level
and horizon into split-conformal quantiles ``q_h``; ``month_bands`` publishes
``p50 x exp(-+ q_h x scale)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from forecasting.intervals import conformal_factor

METHODS = ("run_rate", "seasonal_naive", "theta", "prophet")
BASELINES = ("run_rate", "seasonal_naive", "theta")
WINDOW_DAYS = 30  # a weekly origin's "month": the next 30 days
RUN_RATE_DAYS = 28
VOL_WEEKS = 8
MIN_VOL = 0.02  # a weekly log change below 2% RMS is not believed (a month is never that sure)


# ---- point forecasts (daily, for future dates) ---------------------------------------------


def run_rate_point(y: np.ndarray, n_days: int, **_) -> np.ndarray:
    recent = y[-RUN_RATE_DAYS:]
    return np.full(n_days, float(np.mean(recent)) if len(recent) else 0.0)


def seasonal_naive_point(y: np.ndarray, n_days: int, **_) -> np.ndarray:
    """y[t - 7k]: the last week repeated (the day right after the origin gets y[-7])."""
    if len(y) < 7:
        return run_rate_point(y, n_days)
    last = y[-7:]
    return last[np.arange(n_days) % 7]


def _weekday_index(y: np.ndarray) -> np.ndarray:
    """Multiplicative weekday factors of the last 8 weeks (position = days back mod 7)."""
    use = y[-56:]
    n = len(use)
    if n < 14 or np.mean(use) <= 0:
        return np.ones(7)
    pos = (np.arange(n) - n) % 7  # position of each day in the 7-day cycle ending at the origin
    means = np.bincount(pos, weights=use, minlength=7) / np.maximum(
        np.bincount(pos, minlength=7), 1
    )
    idx = means / max(float(np.mean(means)), 1e-12)
    return np.clip(idx, 0.05, None)


ALPHAS = np.array([0.02, 0.04, 0.07, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.65, 0.8, 1.0])


def theta_point(y: np.ndarray, n_days: int, max_train: int = 112, **_) -> np.ndarray:
    """Theta: SES (alpha by one-step squared error) on the weekday-adjusted series, plus half
    the OLS slope, re-seasonalised. Uses the last ``max_train`` days (recent behaviour)."""
    y = np.asarray(y, float)[-max_train:]
    n = len(y)
    if n < 14:
        return run_rate_point(y, n_days)
    idx = _weekday_index(y)
    pos = (np.arange(n) - n) % 7
    z = y / idx[pos]
    level = np.full(len(ALPHAS), z[0])
    sse = np.zeros(len(ALPHAS))
    for t in range(1, n):  # one pass over days, all alphas at once
        sse += (z[t] - level) ** 2
        level = ALPHAS * z[t] + (1 - ALPHAS) * level
    best = int(np.argmin(sse))
    alpha, last_level = ALPHAS[best], level[best]
    t = np.arange(n)
    slope = float(np.polyfit(t, z, 1)[0])
    h = np.arange(1, n_days + 1)
    drift = 0.5 * slope * (h - 1 + 1 / alpha - (1 - alpha) ** n / alpha)
    future_pos = (np.arange(n_days)) % 7  # day 1 after the origin continues the cycle
    return np.clip((last_level + drift) * idx[future_pos], 0, None)


POINT: dict[str, Callable[..., np.ndarray]] = {
    "run_rate": run_rate_point,
    "seasonal_naive": seasonal_naive_point,
    "theta": theta_point,
}


def volatility(y: np.ndarray) -> float:
    """RMS of week-over-week log changes of the last ``VOL_WEEKS`` weekly sums (NaN under 3
    full weeks). A shift inside the window raises it, so the band widens after a shift."""
    y = np.asarray(y, float)
    weeks = min(len(y) // 7, VOL_WEEKS + 1)
    if weeks < 3:
        return float("nan")
    sums = y[len(y) - 7 * weeks :].reshape(weeks, 7).sum(axis=1)
    c = 0.01 * max(float(np.mean(sums)), 1e-9)
    d = np.diff(np.log(sums + c))
    return max(float(np.sqrt(np.mean(d**2))), MIN_VOL)


# ---- origins and targets -------------------------------------------------------------------


def origins(
    ds: pd.DatetimeIndex,
    min_train: int,
    max_origins: int,
    min_month_ends: int,
    horizons: int,
) -> tuple[str, list[tuple[pd.Timestamp, list[tuple[int, pd.Timestamp, pd.Timestamp]]]]]:
    """(kind, [(origin, [(h, first_day, last_day), ...]), ...]) with every target fully inside
    the history. Month-end origins when at least ``min_month_ends`` exist, else weekly origins
    whose target h covers days 30(h-1)+1 .. 30h after the origin. Most recent ``max_origins``."""
    first, last = ds[0], ds[-1]
    earliest = first + pd.Timedelta(days=min_train - 1)
    month_ends = pd.date_range(earliest, last, freq="ME")
    out = []
    for o in month_ends:
        targets = []
        for h in range(1, horizons + 1):
            start = (o + pd.Timedelta(days=1)).to_period("M").to_timestamp() + pd.DateOffset(
                months=h - 1
            )
            end = start + pd.offsets.MonthEnd(0)
            if end <= last:
                targets.append((h, start, end))
        if targets and targets[0][0] == 1:
            out.append((o, targets))
    if len(out) >= min_month_ends:
        return "month_end", out[-max_origins:]
    out = []
    o = last - pd.Timedelta(days=WINDOW_DAYS)
    while o >= earliest and len(out) < max_origins:
        targets = []
        for h in range(1, horizons + 1):
            start = o + pd.Timedelta(days=WINDOW_DAYS * (h - 1) + 1)
            end = o + pd.Timedelta(days=WINDOW_DAYS * h)
            if end <= last:
                targets.append((h, start, end))
        out.append((o, targets))
        o -= pd.Timedelta(days=7)
    return "weekly", sorted(out, key=lambda t: t[0])


def monthly_backtest(
    history: pd.DataFrame,
    methods: dict[str, Callable[[pd.DataFrame, pd.DatetimeIndex], np.ndarray]],
    cfg,
    multiplier: Callable[[pd.DatetimeIndex, pd.Timestamp], np.ndarray] | None = None,
) -> tuple[str, pd.DataFrame]:
    """One row per origin x horizon x method: y (actual sum), p50 (forecast sum), vol.

    ``methods``: name -> f(train, dates) giving a daily point forecast for ``dates``.
    ``multiplier(dates, origin)``: known changes after the origin (events), applied to every
    method alike."""
    ds = pd.DatetimeIndex(history["ds"])
    y = history["y"].to_numpy(float)
    if len(ds) == 0:
        return "none", pd.DataFrame()
    kind, plan = origins(
        ds, cfg.monthly_min_train_days, cfg.monthly_origins, cfg.monthly_min_month_ends,
        cfg.horizon_months,
    )
    rows = []
    for origin, targets in plan:
        if not targets:
            continue
        n_train = int(np.searchsorted(ds.to_numpy(), origin.to_datetime64(), side="right"))
        train = history.iloc[:n_train]
        vol = volatility(y[:n_train])
        last_day = targets[-1][2]
        dates = pd.date_range(origin + pd.Timedelta(days=1), last_day, freq="D")
        mult = multiplier(dates, origin) if multiplier is not None else 1.0
        day_of = {d: i for i, d in enumerate(dates)}
        for name, fn in methods.items():
            point = np.asarray(fn(train, dates), float) * mult
            for h, start, end in targets:
                i0, i1 = day_of[start], day_of[end] + 1
                actual = y[n_train + i0 : n_train + i1].sum()
                rows.append(
                    {
                        "origin": origin,
                        "horizon": h,
                        "method": name,
                        "y": float(actual),
                        "p50": float(point[i0:i1].sum()),
                        "vol": vol,
                    }
                )
    return kind, pd.DataFrame(rows)


def log_score(y, p50, vol) -> np.ndarray:
    y, p50, vol = (np.asarray(v, float) for v in (y, p50, vol))
    c = 1e-6 * np.maximum(np.abs(y) + np.abs(p50), 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(np.log((y + c) / (p50 + c))) / vol


def ape(y, p50) -> np.ndarray:
    y, p50 = np.asarray(y, float), np.asarray(p50, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(y > 0, np.abs(p50 - y) / y, np.nan)


def choose(bt: pd.DataFrame, margin: float, win_share: float = 0.75) -> tuple[str, dict]:
    """The method with the lowest median absolute % error on next month (horizon 1). Another
    method than the run-rate must beat it clearly: a median error at least ``margin``
    (relative) lower AND a smaller error at ``win_share`` of the origins; otherwise (a few
    lucky origins on a random walk) the run-rate is published."""
    h1 = bt[bt["horizon"] == 1].assign(ape=lambda d: ape(d["y"], d["p50"]))
    err = h1.groupby("method")["ape"].median().to_dict() if len(h1) else {}
    finite = {m: e for m, e in err.items() if np.isfinite(e)}
    if not finite or "run_rate" not in finite:
        return "run_rate", err
    wide = h1.pivot_table(index="origin", columns="method", values="ape")
    rr = wide["run_rate"]

    def clearly_better(m: str) -> bool:
        wins = float(np.mean((wide[m] < rr).to_numpy())) if m in wide else 0.0
        return finite[m] <= (1 - margin) * finite["run_rate"] and wins >= win_share

    contenders = [m for m in finite if m == "run_rate" or clearly_better(m)]
    best = min(contenders, key=lambda m: (finite[m], METHODS.index(m)))
    return best, err


# ---- calibration across series, per-series verdicts, published months -----------------------


PRIOR_WEIGHT = 2.0  # origins' worth of the volatility prior in a series' error scale
MAX_SURGE = 2.0  # at most this much wider for volatility above the series' usual
MIN_POOL_H = 10  # a horizon with fewer pooled scores is extrapolated from the shorter one


def _scales(frame: pd.DataFrame) -> pd.DataFrame:
    """Scores and current scales, per series x method x horizon (rows = origins), vectorised.

    Scale at an origin: the RMS of the series' OTHER origins' log errors, shrunk towards the
    level's typical error for its volatility (``c x vol``, weight ``PRIOR_WEIGHT`` origins),
    times vol / the series' median vol (between 1 and ``MAX_SURGE``) so a period more volatile
    than usual (a level shift) is wider. Score = |log error| / scale. The current scale uses
    every origin and today's volatility, the same way."""
    g = frame.groupby(["unique_id", "method", "horizon"], sort=False)
    e = frame["err"].to_numpy(float)
    vol = frame["vol"].to_numpy(float)
    c = frame["c"].to_numpy(float)
    ok = np.isfinite(e)
    e2 = np.where(ok, e**2, 0.0)
    total = g["err"].transform(lambda x: np.nansum(x.to_numpy(float) ** 2)).to_numpy(float)
    n_ok = g["err"].transform("count").to_numpy(float)
    med_vol = g["vol"].transform("median").to_numpy(float)
    c_now = g["c"].transform("median").to_numpy(float)
    vol_now = frame["vol_now"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.sqrt((total - e2 + PRIOR_WEIGHT * (c * vol) ** 2) / (n_ok - ok + PRIOR_WEIGHT))
        score = np.where(ok, e / (s * np.clip(vol / med_vol, 1.0, MAX_SURGE)), np.nan)
        now = np.sqrt((total + PRIOR_WEIGHT * (c_now * vol_now) ** 2) / (n_ok + PRIOR_WEIGHT))
        now = now * np.where(med_vol > 0, np.clip(vol_now / med_vol, 1.0, MAX_SURGE), 1.0)
    return pd.DataFrame({"score": score, "scale_now": now}, index=frame.index)


def evaluate(results: list[dict], cfg) -> dict:
    """Pool the monthly backtests of every series.

    Per series, the method is chosen first (``choose``); the chosen method's rows are also
    pooled as ``published``. Errors are scaled per series (``_scales``) and the scaled scores
    pooled per (metric, level, method, horizon) -- the level's own when it has
    ``monthly_min_pool`` of them, else every level's -- into split-conformal quantiles made
    non-decreasing in the horizon. Each series' verdict carries its status, chosen method,
    errors and leave-one-series-out coverage per method and horizon, and its current scales.
    """
    L = cfg.interval_level
    parts = []
    for r in results:
        bt = r.get("monthly_bt")
        if bt is None or len(bt) == 0:
            continue
        m = r["meta"]
        parts.append(
            bt.assign(unique_id=m["unique_id"], metric=m["metric"], series_level=m["series_level"],
                      vol_now=r.get("vol_now", np.nan))
        )
    if not parts:
        return {"q": {}, "series": {}, "c": {}, "scores": pd.DataFrame()}
    allbt = pd.concat(parts, ignore_index=True)
    allbt["err"] = log_score(allbt["y"], allbt["p50"], 1.0)
    allbt["ape"] = ape(allbt["y"], allbt["p50"])
    horizons = range(1, cfg.horizon_months + 1)

    chosen_of, errors_of, n_of = {}, {}, {}
    for uid, g in allbt.groupby("unique_id", sort=False):
        n_of[uid] = int(g.loc[g["horizon"] == 1, "origin"].nunique())
        chosen_of[uid], errors_of[uid] = choose(g, cfg.monthly_margin)
    pick = allbt["method"].to_numpy() == allbt["unique_id"].map(chosen_of).to_numpy()
    allbt = pd.concat([allbt, allbt[pick].assign(method="published")], ignore_index=True)

    # The typical error per unit of volatility, per level (or every level when few).
    ratio = allbt["err"] / allbt["vol"]
    allbt["c"] = np.nan
    c_of: dict[tuple, float] = {}
    for (metric, method, h), g in allbt.assign(ratio=ratio).groupby(["metric", "method",
                                                                   "horizon"]):
        wide = float(np.nanmedian(g["ratio"])) if g["ratio"].notna().any() else np.nan
        for level, gl in g.groupby("series_level"):
            v = gl["ratio"].dropna()
            c = float(v.median()) if len(v) >= cfg.monthly_min_pool else wide
            c_of[(metric, level, method, int(h))] = c
            allbt.loc[gl.index, "c"] = c
    allbt[["score", "scale_now"]] = _scales(allbt)

    finite = allbt[np.isfinite(allbt["score"])]
    groups = {
        key: (g["unique_id"].to_numpy(), g["series_level"].to_numpy(), g["score"].to_numpy(float))
        for key, g in finite.groupby(["metric", "method", "horizon"])
    }

    def pool_of(metric, level, method, h, exclude=None):
        uids, levels, s = groups.get((metric, method, h), (np.array([]),) * 3)
        keep = uids != exclude if exclude is not None else np.ones(len(s), bool)
        own = s[keep & (levels == level)]
        return own if len(own) >= cfg.monthly_min_pool else s[keep]

    def quantiles(metric, level, method, exclude=None) -> dict[int, float]:
        q, last_h, last_q = {}, None, float("nan")
        for h in horizons:
            pool = pool_of(metric, level, method, h, exclude)
            # the pools hold finite scores only
            v = (conformal_factor(pool, L, empty=np.nan)
                 if h == 1 or len(pool) >= MIN_POOL_H else np.nan)
            if not np.isfinite(v) and last_h is not None:
                v = last_q * np.sqrt(h / last_h)  # no target that far: grow like a random walk
            if np.isfinite(last_q):
                v = max(v, last_q)  # the band never narrows with the horizon
            if np.isfinite(v):
                last_h, last_q = h, v
            q[h] = v
        return q

    q: dict[tuple, dict[int, float]] = {}
    for (metric, level, method), _ in allbt.groupby(["metric", "series_level", "method"]):
        q[(metric, level, method)] = quantiles(metric, level, method)

    verdicts = {}
    for uid, g in allbt.groupby("unique_id", sort=False):
        metric, level = g["metric"].iloc[0], g["series_level"].iloc[0]
        n_origins, chosen, err = n_of[uid], chosen_of[uid], errors_of[uid]
        status = "backtested" if n_origins >= cfg.monthly_min_origins else "too_short"
        per_h, scale = {}, {}
        for h, gh in g.groupby("horizon"):
            row = {"n_origins": int(gh["origin"].nunique())}
            for method, gm in gh.groupby("method"):
                q_out = quantiles(metric, level, method, exclude=uid)[int(h)]
                s = gm["score"].to_numpy(float)
                s = s[np.isfinite(s)]
                row[f"{method}_coverage"] = (
                    float(np.mean(s <= q_out)) if np.isfinite(q_out) and len(s) else np.nan
                )
                row[f"{method}_mdape"] = (
                    float(np.nanmedian(gm["ape"])) if gm["ape"].notna().any() else np.nan
                )
                if method == "published" and row["n_origins"] >= cfg.monthly_min_origins:
                    scale[int(h)] = float(gm["scale_now"].iloc[0])
            per_h[int(h)] = row
        verdicts[uid] = {
            "status": status,
            "chosen": chosen if status == "backtested" else "fallback",
            "best_by_error": chosen,
            "n_origins": n_origins,
            "errors": err,
            "per_h": per_h,
            "scale": scale,
        }
    return {"q": q, "series": verdicts, "c": c_of, "scores": allbt}


def month_bands(
    months: pd.Series,
    actual_to_date: np.ndarray,
    dates: pd.DatetimeIndex,
    point: np.ndarray,
    scale: dict[int, float],
    q: dict[int, float] | None,
    as_of: pd.Timestamp,
    default_halfwidth: float,
) -> pd.DataFrame:
    """p10/p50/p90 of each month: actual to date + the point forecast's sum over the month's
    forecast days, times exp(-+ q_h x scale_h) (log scale). The current month (h = 0) uses
    h = 1 times the square root of the share of the month still to come (not backtested on
    its own). A horizon beyond the backtested ones keeps the last scale. Without a calibrated
    q or scale, ``default_halfwidth`` x sqrt(h) (wide on purpose)."""
    dates = pd.DatetimeIndex(dates)
    period = dates.to_period("M")
    this = as_of.to_period("M")
    known = sorted(h for h, v in (scale or {}).items() if np.isfinite(v))
    rows = []
    for month, atd in zip(pd.to_datetime(months), actual_to_date, strict=True):
        mp = month.to_period("M")
        inside = period == mp
        f = float(point[inside].sum())
        k = int(inside.sum())
        h = (mp - this).n
        share = k / mp.days_in_month
        hh = max(h, 1)
        qh = (q or {}).get(hh, float("nan"))
        # the band never narrows with the horizon: the widest scale up to this one
        sh = max(scale[x] for x in known if x <= max(hh, known[0])) if known else np.nan
        if np.isfinite(qh) and np.isfinite(sh):
            half = qh * sh * (np.sqrt(share) if h == 0 else 1.0)
            calibrated = True
        else:
            half = default_halfwidth * np.sqrt(max(h, share))
            calibrated = False
        rows.append(
            {
                "horizon": h,
                "p50": atd + f,
                "p10": atd + f * np.exp(-half),
                "p90": atd + f * np.exp(half),
                "forecast_sum": f,
                "log_halfwidth": half,
                "q": qh,
                "calibrated": calibrated,
            }
        )
    return pd.DataFrame(rows)
