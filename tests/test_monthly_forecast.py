"""Monthly forecasts backtested on what is published (next month's sum): the interval holds,
the run-rate wins where nothing beats it, a statistical model wins where trend and season are
real, and a planned model switch moves next month by the price ratio. Series are built here
with known noise (not the demo)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from forecasting.config import KEY_COLUMNS, ForecastConfig
from forecasting.inputs import load_events
from forecasting.pipeline import forecast_frame
from forecasting.series import FRAME_COLUMNS

END = date(2026, 6, 30)
NO_FERMI = pd.DataFrame(columns=["spread"]).rename_axis("feature")
NO_EVENTS = pd.DataFrame(columns=["ds", "event_name", "kind", "provider", "feature"])
CFG = ForecastConfig(n_samples=100, workers=2, metrics=("spend",), levels=("feature",),
                     backtest_cutoffs=2, horizon_months=2)


def _series(name: str, y: np.ndarray, end: date = END) -> pd.DataFrame:
    ds = pd.date_range(end=pd.Timestamp(end), periods=len(y))
    df = pd.DataFrame({"unique_id": f"spend|feature|feature={name}", "ds": ds, "y": y,
                       "series_level": "feature", "metric": "spend"})
    for c in KEY_COLUMNS:
        df[c] = None
    df["feature"] = name
    return df[list(FRAME_COLUMNS)]


def _random_walk(seed: int, n: int = 240) -> np.ndarray:
    """A level that wanders (2%/day random walk on the log scale) under 30% daily noise."""
    rng = np.random.default_rng(seed)
    level = 200 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    return level * np.exp(rng.normal(0, 0.3, n))


def _seasonal_trend(seed: int, n: int = 240) -> np.ndarray:
    """Strong weekly season (weekends at 40%) on a steady linear growth, 10% noise."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range(end=pd.Timestamp(END), periods=n)
    weekly = np.where(ds.day_of_week >= 5, 0.4, 1.0)
    return (50 + 0.8 * np.arange(n)) * weekly * np.exp(rng.normal(0, 0.1, n))


def _run(frame, events=NO_EVENTS, price_book=None, cfg=CFG, as_of=END):
    return forecast_frame(frame, as_of, events, NO_FERMI, pd.Series(dtype=float), cfg,
                          score_anomalies=False, price_book=price_book)


@pytest.fixture(scope="module")
def mixed():
    frame = pd.concat(
        [_series(f"walk{i}", _random_walk(100 + i)) for i in range(10)]
        + [_series(f"growth{i}", _seasonal_trend(200 + i)) for i in range(6)],
        ignore_index=True,
    )
    return _run(frame)


def _monthly_rows(run, horizon=1):
    bt = run.backtest
    return bt[(bt["phase"] == "monthly") & (bt["horizon_months"] == horizon)].set_index(
        "unique_id")


def test_calibrated_monthly_interval_holds_about_80_percent(mixed):
    rows = _monthly_rows(mixed)
    pooled = rows.loc["__pooled__|monthly|spend|feature"]
    assert pooled["n_origins"] >= 45  # 16 series x 3 month-end origins
    assert pooled["origin_kind"] == "month_end"
    # leave-one-series-out: no series is judged by a band its own errors set
    assert 0.7 <= pooled["monthly_coverage"] <= 0.9, pooled["monthly_coverage"]
    # the published band widens with the horizon
    m = mixed.monthly[mixed.monthly["month_kind"] == "future"].sort_values("month")
    width = (m["p90"] / m["p10"]).groupby(m["unique_id"]).apply(lambda w: w.is_monotonic_increasing)
    assert width.all()


def test_on_a_random_walk_the_run_rate_wins_and_is_published(mixed):
    rows = _monthly_rows(mixed)
    walks = rows[rows.index.str.contains("walk")]
    assert (walks["method"] == "run_rate").mean() >= 0.8, walks["method"].to_dict()
    months = mixed.monthly[mixed.monthly["unique_id"].isin(walks.index)]
    published = months.groupby("unique_id")["method"].first()
    assert (published == walks["method"]).all()
    # never published from a method that lost to the run-rate
    assert (walks["monthly_mdape"] <= walks["run_rate_mdape"] + 1e-12).all()


def test_on_season_and_trend_a_statistical_model_wins(mixed):
    rows = _monthly_rows(mixed)
    growth = rows[rows.index.str.contains("growth")]
    assert growth["method"].isin(["prophet", "theta"]).all(), growth["method"].to_dict()
    assert (growth["monthly_mdape"] < 0.5 * growth["run_rate_mdape"]).all()
    nxt = mixed.monthly[(mixed.monthly["month"] == "2026-07-01")
                        & mixed.monthly["unique_id"].str.contains("growth")]
    assert (nxt["backtest_status"] == "backtested").all()
    assert nxt["backtest_coverage"].notna().all() and nxt["run_rate_mdape"].notna().all()


def test_a_recent_level_shift_widens_the_band():
    rng = np.random.default_rng(3)
    calm = 300 * np.exp(rng.normal(0, 0.1, 240))
    shifted = calm.copy()
    shifted[-20:] *= 1.8  # a launch three weeks ago
    run = _run(pd.concat([_series("calm", calm), _series("shifted", shifted)]))
    m = run.monthly[run.monthly["month"] == "2026-07-01"].set_index("feature")
    rel = (m["p90"] - m["p10"]) / m["p50"]
    assert rel["shifted"] > 1.5 * rel["calm"]


def test_a_planned_model_switch_moves_next_month_by_the_price_ratio(tmp_path):
    y = 400 * np.exp(np.random.default_rng(9).normal(0, 0.05, 180))
    frame = _series("invoice_reader", y)
    book = pd.DataFrame({
        "provider": ["vendor_x", "vendor_x"], "model": ["big-model", "small-model"],
        "valid_from": pd.to_datetime(["2020-01-01", "2020-01-01"]),
        "input_per_mtok": [10.0, 2.5], "output_per_mtok": [40.0, 10.0],
    })
    events_csv = tmp_path / "events.csv"
    events_csv.write_text(
        "event_date,event_name,kind,provider,feature,model,to_model\n"
        "2026-07-01,reader_to_small,model_switch,vendor_x,invoice_reader,big-model,small-model\n")
    cfg = ForecastConfig(n_samples=100, workers=1, metrics=("spend",), levels=("feature",),
                         backtest_cutoffs=2, horizon_months=2)
    before = _run(frame, cfg=cfg, price_book=book)
    after = _run(frame, events=load_events(events_csv), cfg=cfg, price_book=book)

    def july(run):
        m = run.monthly
        return m[m["month"] == "2026-07-01"].iloc[0]

    assert july(after)["p50"] / july(before)["p50"] == pytest.approx(0.25, rel=1e-6)
    assert "reader_to_small" in july(after)["events_applied"]
    assert july(before)["events_applied"] is None


def test_too_short_backtest_says_so_and_is_not_a_confident_band():
    run = _run(_series("fresh_tool", 50 * np.exp(np.random.default_rng(1).normal(0, .1, 40))))
    nxt = run.monthly[run.monthly["month"] == "2026-07-01"].iloc[0]
    assert nxt["backtest_status"] == "too_short" and nxt["method"] == "prophet"
    assert nxt["p90"] / nxt["p10"] > 1.9  # exp(2 x 0.35)


def test_a_price_book_version_moves_the_model_and_its_share_of_the_total():
    rng = np.random.default_rng(21)
    ds = pd.date_range(end=pd.Timestamp(END), periods=150)

    def part(uid, level, y, **keys):
        df = pd.DataFrame({"unique_id": uid, "ds": ds, "y": y, "series_level": level,
                           "metric": "spend"})
        for c in KEY_COLUMNS:
            df[c] = keys.get(c)
        return df[list(FRAME_COLUMNS)]

    cheap = 300 * np.exp(rng.normal(0, 0.05, 150))
    dear = 100 * np.exp(rng.normal(0, 0.05, 150))
    frame = pd.concat([
        part("spend|total", "total", cheap + dear),
        part("spend|provider_model|provider=vendor_y|model=m-large", "provider_model", dear,
             provider="vendor_y", model="m-large"),
        part("spend|provider_model|provider=vendor_y|model=m-small", "provider_model", cheap,
             provider="vendor_y", model="m-small"),
    ], ignore_index=True)
    book = pd.DataFrame({
        "provider": ["vendor_y"] * 3, "model": ["m-large", "m-large", "m-small"],
        "valid_from": pd.to_datetime(["2020-01-01", "2026-07-01", "2020-01-01"]),
        "input_per_mtok": [4.0, 2.0, 1.0], "output_per_mtok": [16.0, 8.0, 4.0],
    })
    cfg = ForecastConfig(n_samples=100, workers=1, metrics=("spend",),
                         levels=("total", "provider_model"), backtest_cutoffs=2,
                         horizon_months=1)
    before = _run(frame, cfg=cfg, price_book=book[book["valid_from"] < "2026-01-01"])
    after = _run(frame, cfg=cfg, price_book=book)

    def july(run, uid):
        m = run.monthly
        return m[(m["unique_id"] == uid) & (m["month"] == "2026-07-01")].iloc[0]

    large = "spend|provider_model|provider=vendor_y|model=m-large"
    assert july(after, large)["p50"] / july(before, large)["p50"] == pytest.approx(0.5, rel=1e-6)
    small = "spend|provider_model|provider=vendor_y|model=m-small"
    assert july(after, small)["p50"] == pytest.approx(july(before, small)["p50"], rel=1e-9)
    # the total moves by m-large's share of the last 28 days (about a quarter) x -50%
    share = dear[-28:].sum() / (cheap[-28:] + dear[-28:]).sum()
    ratio = july(after, "spend|total")["p50"] / july(before, "spend|total")["p50"]
    assert ratio == pytest.approx(1 - 0.5 * share, rel=1e-6)
    assert "price_book vendor_y/m-large" in july(after, "spend|total")["events_applied"]
