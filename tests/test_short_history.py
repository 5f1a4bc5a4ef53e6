"""Forecasting on a short history: the demo's minimum (21 days) runs end to end with its report,
short series get the fallback and say their backtest is too short, and `run` / `demo-data`
accept the same day range."""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecasting.config import ForecastConfig
from forecasting.pipeline import forecast_frame
from forecasting.synthetic import synthetic_series
from tokenbook.cli import app

NO_EVENTS = pd.DataFrame(columns=["ds", "event_name", "kind", "provider", "feature"])
NO_FERMI = pd.DataFrame(columns=["spread"]).rename_axis("feature")


@pytest.mark.parametrize("days", [10, 21, 30])
def test_short_series_get_the_fallback_and_every_table(days):
    end = date(2026, 5, 20)
    frame = pd.concat(
        [
            synthetic_series("spend|total", end, days=days, level=400, seed=11),
            synthetic_series(
                "spend|feature|feature=ledger_scan", end, days=days, level=90, seed=12,
                series_level="feature", feature="ledger_scan",
            ),
        ],
        ignore_index=True,
    )
    run = forecast_frame(
        frame, end, NO_EVENTS, NO_FERMI, pd.Series(dtype=float),
        ForecastConfig(n_samples=200, workers=1, metrics=("spend",)), score_anomalies=False,
    )
    total = run.monthly[run.monthly["unique_id"] == "spend|total"]
    assert len(total) == 4 and (total["p50"] > 0).all()
    nxt = total[total["month_kind"] == "future"].iloc[0]
    # Too short to backtest a month ahead: says so; under 28 days not even Prophet fits.
    assert nxt["backtest_status"] == "too_short"
    assert nxt["method"] == ("fallback" if days < 28 else "prophet")
    assert nxt["p90"] / nxt["p10"] > 1.9  # no confident band: at least exp(+-0.35)
    assert {"unique_id", "metric", "series_level"} <= set(run.backtest.columns)


def test_run_and_demo_data_accept_the_same_days():
    for cmd in (["run", "--demo"], ["demo-data", "--end", "2026-11-27", "--out", "x"]):
        r = CliRunner().invoke(app, [*cmd, "--days", "20"])
        assert r.exit_code == 2 and "21" in r.output, r.output


@pytest.mark.slow
def test_run_demo_on_its_minimum_history_writes_the_report(tmp_path):
    wh = tmp_path / "wh.duckdb"
    report = tmp_path / "report.html"
    args = ["run", "--demo", "--days", "21", "--end", "2026-11-27", "--scale", "0.015",
            "--data-dir", str(tmp_path / "demo"), "--warehouse", f"duckdb:///{wh}",
            "--report", str(report)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "Traceback" not in result.output and "error" not in result.output.lower()
    html = report.read_text()
    assert "Forecast" in html and "too short" in html
    con = duckdb.connect(str(wh))
    try:
        n = {t: con.execute(f"select count(*) from marts.{t}").fetchone()[0]
             for t in ("forecast_daily", "forecast_monthly", "forecast_backtest")}
    finally:
        con.close()
    assert n["forecast_daily"] > 0 and n["forecast_monthly"] > 0
    assert n["forecast_backtest"] > 0  # the monthly rows say "too short" per series
