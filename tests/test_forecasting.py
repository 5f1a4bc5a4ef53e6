"""Forecasts: shape, months from sample paths, coverage and calibration, fallback, Fermi,
the warehouse adapter, and idempotent publishing (DuckDB for real, BigQuery payloads)."""

from __future__ import annotations

import io
import tempfile
from datetime import date
from pathlib import Path
from unittest import mock

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from core.warehouse import parse_warehouse
from forecasting.config import ForecastConfig
from forecasting.inputs import load_budgets, load_events, load_fermi_estimates
from forecasting.intervals import (
    band,
    conformal_factor,
    coverage,
    monthly_from_samples,
    scores,
    widen,
)
from forecasting.pipeline import forecast_frame
from forecasting.publish import TABLES, publish_bigquery, publish_duckdb, run_tables
from forecasting.series import load_daily_series
from forecasting.synthetic import make_ledger, synthetic_series
from forecasting.tasks import horizon_dates

# The forecasts below use an organisation's events, Fermi estimates and budgets from its own
# configuration folder, written here with invented names (not the demo company's).
ORG_CONFIG_FILES = {
    "forecast_events.csv": (
        "event_date,event_name,kind,provider,feature,description,source\n"
        "2025-12-25,christmas_2025,holiday,,,holiday: business traffic low,calendar\n"
        "2026-01-01,new_year_2026,holiday,,,holiday: business traffic low,calendar\n"
        "2026-01-01,quote_builder_launch,launch,,quote_builder,quote_builder launched,plan\n"
        "2026-09-07,labor_day_2026,holiday,,,holiday: business traffic low,calendar\n"
        "2026-11-26,thanksgiving_2026,holiday,,,holiday: business traffic low,calendar\n"
        "2026-11-27,black_friday_2026,holiday,,,retail peak,calendar\n"
        "2026-12-25,christmas_2026,holiday,,,holiday: business traffic low,calendar\n"
        "2027-01-01,new_year_2027,holiday,,,holiday: business traffic low,calendar\n"
    ),
    "new_feature_estimates.csv": (
        "feature,launch_date,daily_active_users,calls_per_user,tokens_per_call,"
        "usd_per_million_tokens,spread,source\n"
        "quote_builder,2026-01-01,400,3.0,6000,1.20,2.5,plan: 400 DAU x 3 quotes\n"
        "churn_explainer,2025-05-20,900,4.0,1500,0.60,2.5,plan: 900 DAU x 4 explanations\n"
        "claims_intake,2025-04-01,60,8.0,12000,3.00,3.0,plan: 60 users x 8 claims\n"
    ),
    "budgets.csv": (
        "feature,monthly_budget_usd\n"
        "invoice_triage,900.00\n"
        "churn_explainer,60.00\n"
        "quote_builder,200.00\n"
        "claims_intake,400.00\n"
    ),
}
ORG_CONFIG = Path(tempfile.mkdtemp(prefix="org-config-"))
for _name, _text in ORG_CONFIG_FILES.items():
    (ORG_CONFIG / _name).write_text(_text, encoding="utf-8")

AS_OF = date(2026, 11, 20)
CFG = ForecastConfig(n_samples=200, workers=1, metrics=("spend",), backtest_cutoffs=4)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    parts = [
        synthetic_series("spend|total", AS_OF, days=120, level=300, launch_day=70, seed=1),
        synthetic_series(
            "spend|provider|provider=openai",
            AS_OF,
            days=120,
            level=150,
            seed=2,
            series_level="provider",
            provider="openai",
        ),
        synthetic_series(
            "spend|feature|feature=invoice_triage",
            AS_OF,
            days=90,
            level=100,
            seed=3,
            series_level="feature",
            feature="invoice_triage",
        ),
        # 12 days of a feature that has a Fermi estimate: the estimate is used, not a model.
        synthetic_series(
            "spend|feature|feature=churn_explainer",
            AS_OF,
            days=12,
            level=20,
            seed=4,
            series_level="feature",
            feature="churn_explainer",
        ),
        # 10 days of a segment series: too short for Prophet -> fallback.
        synthetic_series(
            "spend|feature_segment|feature=invoice_triage|customer_segment=smb",
            AS_OF,
            days=10,
            level=10,
            seed=5,
            series_level="feature_segment",
            feature="invoice_triage",
            customer_segment="smb",
        ),
    ]
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def run(frame):
    return forecast_frame(
        frame,
        AS_OF,
        load_events(config=ORG_CONFIG),
        load_fermi_estimates(config=ORG_CONFIG),
        load_budgets(config=ORG_CONFIG),
        CFG,
        score_anomalies=False,
    )


def test_forecast_shape(run, frame):
    days = horizon_dates(pd.Timestamp(AS_OF), CFG.horizon_months)
    assert days[0] == pd.Timestamp("2026-11-21") and days[-1] == pd.Timestamp("2027-02-28")
    n_series = run.daily["unique_id"].nunique()
    # the 5 input series, plus the Fermi-only series of quote_builder / claims_intake
    assert n_series == 7
    assert len(run.daily) == n_series * len(days)
    d = run.daily
    assert (d["p10"] <= d["p50"]).all() and (d["p50"] <= d["p90"]).all() and (d["p10"] >= 0).all()
    assert set(d["interval_level"]) == {0.8}
    m = run.monthly
    assert (m.groupby("unique_id")["month"].count() == 4).all()  # current month + 3
    total = m[m["unique_id"] == "spend|total"].set_index("month")
    nov = total.loc[pd.Timestamp("2026-11-01")]
    hist = frame[frame["unique_id"] == "spend|total"]
    mtd = hist.loc[hist["ds"] >= "2026-11-01", "y"].sum()
    assert nov["month_kind"] == "current" and nov["forecast_days"] == 10
    assert nov["actual_to_date"] == pytest.approx(mtd)
    assert nov["p10"] > mtd  # ten days of spend still to come
    assert total.loc[pd.Timestamp("2026-12-01"), "forecast_days"] == 31
    methods = run.daily.drop_duplicates("unique_id").set_index("unique_id")["method"]
    assert methods["spend|total"] == "prophet"
    assert methods["spend|feature|feature=invoice_triage"] == "prophet"


def test_month_total_comes_from_summed_paths_not_summed_daily_bounds():
    rng = np.random.default_rng(0)
    dates = pd.date_range("2027-01-01", "2027-01-31")
    samples = 100 + rng.normal(0, 10, size=(len(dates), 4000))  # independent daily noise
    monthly = monthly_from_samples(dates, samples, 0.8)
    row = monthly.iloc[0]
    sum_of_daily_p90 = band(samples, 0.8)[2].sum()
    path_sums = samples.sum(axis=0)
    assert row["p_hi"] == pytest.approx(np.quantile(path_sums, 0.9), rel=1e-9)
    # Adding daily p90s overstates the month's p90 (errors partly cancel in a sum):
    # here by about 12.8*31 - 12.8*sqrt(31) = 326.
    assert sum_of_daily_p90 - row["p_hi"] > 250
    assert row["p50"] == pytest.approx(3100, rel=0.01)


def test_published_months_match_sample_sums(run):
    """The monthly p50 of a series is close to the sum of its daily p50s, but its band is
    narrower than the summed daily bands (it was built from sample paths)."""
    uid = "spend|feature|feature=invoice_triage"
    d = run.daily[run.daily["unique_id"] == uid]
    m = run.monthly[(run.monthly["unique_id"] == uid) & (run.monthly["month"] == "2027-01-01")]
    jan = d[(d["ds"] >= "2027-01-01") & (d["ds"] <= "2027-01-31")]
    assert float(m["p90"].iloc[0]) - float(m["p10"].iloc[0]) < (jan["p90"] - jan["p10"]).sum()


def test_coverage_and_conformal_on_known_case():
    y = np.array([1.0, 2.0, 3.0, 10.0])
    lo, hi = np.array([0.0, 2.5, 2.0, 0.0]), np.array([2.0, 4.0, 4.0, 5.0])
    assert coverage(y, lo, hi) == 0.5
    s = scores(
        y=[12.0, 8.0, 10.0], lo=[8.0, 8.0, 8.0], mid=[10.0, 10.0, 10.0], hi=[12.0, 12.0, 12.0]
    )
    np.testing.assert_allclose(s, [1.0, 1.0, 0.0])
    # ceil((n+1)*0.8)/n-th quantile of 1..10 is 9
    assert conformal_factor(np.arange(1, 11, dtype=float), 0.8) == 9.0
    lo2, mid2, hi2 = widen([8.0], [10.0], [12.0], 2.0)
    assert (lo2[0], mid2[0], hi2[0]) == (6.0, 10.0, 14.0)


def test_calibration_on_early_cutoffs_fixes_held_out_coverage():
    """A model whose interval is too narrow (claims sigma 10, truth 16): raw coverage of its
    80% interval is far below 80%; the factor from early data brings later data within 5 points."""
    rng = np.random.default_rng(1)
    z = 1.2815515655446004
    early, late = rng.normal(100, 16, 3000), rng.normal(100, 16, 3000)
    mid, lo, hi = 100.0, 100 - 10 * z, 100 + 10 * z
    raw_late = coverage(late, np.full(3000, lo), np.full(3000, hi))
    k = conformal_factor(scores(early, lo, mid, hi), 0.8)
    lo_c, _, hi_c = widen(lo, mid, hi, k)
    calibrated_late = coverage(late, np.full(3000, lo_c), np.full(3000, hi_c))
    assert raw_late < 0.6
    assert abs(calibrated_late - 0.8) <= 0.05


def test_backtest_table_is_stored_per_series_and_pooled(run):
    bt = run.backtest[run.backtest["phase"].isin(["calibration", "holdout"])]  # daily phases
    per = bt[bt["series_level"] != "pooled"]
    total = per[per["unique_id"] == "spend|total"].set_index("phase")
    assert set(total.index) == {"calibration", "holdout"}
    assert (total["n_cutoffs"] == 2).all() and (total["n_points"] == 28).all()
    assert total.loc["holdout", "first_cutoff"] > total.loc["calibration", "last_cutoff"]
    for col in ("coverage_raw", "coverage_calibrated", "mase", "mape", "mae_ratio_vs_snaive"):
        assert total[col].notna().all(), col
    assert total["spec"].iloc[0] in ("additive", "log")
    pooled = bt[bt["unique_id"] == "__pooled__|prophet"].set_index("phase")
    assert pooled.loc["holdout", "n_series"] == 3
    assert 0 <= pooled.loc["holdout", "coverage_calibrated"] <= 1
    assert pooled["calibration_factor"].iloc[0] == run.factors["prophet"]["daily"]


def test_fallback_on_a_10_day_series(run):
    uid = "spend|feature_segment|feature=invoice_triage|customer_segment=smb"
    d = run.daily[run.daily["unique_id"] == uid]
    assert set(d["method"]) == {"fallback"}
    assert (d["p90"] > d["p10"]).all() and (d["p50"] > 0).all()
    assert d["p50"].mean() == pytest.approx(10 * 0.93, rel=0.35)  # near the recent level


def test_flat_and_empty_series_do_not_crash():
    flat = synthetic_series(
        "spend|provider|provider=bedrock",
        AS_OF,
        days=40,
        series_level="provider",
        provider="bedrock",
    )
    flat["y"] = 0.0
    out = forecast_frame(
        flat,
        AS_OF,
        load_events(config=ORG_CONFIG),
        load_fermi_estimates(config=ORG_CONFIG).iloc[:0],
        load_budgets(config=ORG_CONFIG),
        ForecastConfig(n_samples=100, workers=1, metrics=("spend",)),
        score_anomalies=False,
    )
    assert set(out.daily["method"]) == {"fallback"}
    assert (out.daily["p90"] == 0).all()


def test_fermi_path_for_new_features(run):
    fermi = load_fermi_estimates(config=ORG_CONFIG)
    d = run.daily.drop_duplicates("unique_id").set_index("unique_id")
    assert d.loc["spend|feature|feature=churn_explainer", "method"] == "fermi"
    assert d.loc["spend|feature|feature=quote_builder", "method"] == "fermi"  # no data at all
    m = run.monthly[
        (run.monthly["unique_id"] == "spend|feature|feature=churn_explainer")
        & (run.monthly["month"] == "2027-01-01")
    ].iloc[0]
    est = fermi.loc["churn_explainer"]
    daily_usd = (
        est["daily_active_users"]
        * est["calls_per_user"]
        * est["tokens_per_call"]
        * est["usd_per_million_tokens"]
        / 1e6
    )
    # weekday 1.0 / weekend 0.6 -> about 0.886 of 31 full days; the median of a product of
    # log-normals is the product of medians
    assert m["p50"] == pytest.approx(daily_usd * 31 * 0.886, rel=0.25)
    assert m["p90"] / m["p10"] > 4  # wide on purpose


def test_budget_projection_for_current_month(run):
    m = run.monthly
    row = m[
        (m["unique_id"] == "spend|feature|feature=invoice_triage") & (m["month_kind"] == "current")
    ].iloc[0]
    assert row["monthly_budget_usd"] == 900.0
    assert 0 <= row["prob_over_budget"] <= 1
    assert row["budget_status"] in ("within", "at_risk", "over")
    assert m.loc[m["series_level"] == "total", "monthly_budget_usd"].isna().all()


def test_load_daily_series_from_the_ledger():
    con = duckdb.connect()
    calls = make_ledger(con, AS_OF, days=30, seed=3)
    frame = load_daily_series(con, date(2026, 11, 15))
    assert frame["ds"].max() == pd.Timestamp("2026-11-15")  # nothing after as_of
    total = frame[frame["unique_id"] == "spend|total"]
    expected = calls[calls["call_date"] <= "2026-11-15"]["effective_cost_usd"].sum()
    assert total["y"].sum() == pytest.approx(expected, rel=1e-9)
    assert len(total) == 25  # 2026-10-22..2026-11-15: one row per day, contiguous
    levels = set(frame["series_level"])
    assert levels == {"total", "provider", "provider_model", "feature", "feature_segment"}
    assert set(frame["metric"]) == {"spend", "tokens", "calls"}
    calls_total = frame[frame["unique_id"] == "calls|total"]["y"].sum()
    assert calls_total == (calls["call_date"] <= "2026-11-15").sum()
    pm = frame[(frame["series_level"] == "provider_model") & (frame["metric"] == "spend")]
    assert set(pm["model"]) == {"gpt-4o-mini", "claude-haiku-4-5", "claude-sonnet-4-5", "gpt-4.1"}
    # a (feature, segment) with no calls on a day gets a 0 row, not a gap
    fs = frame[frame["series_level"] == "feature_segment"]
    assert (
        fs.groupby("unique_id")["ds"].count()
        == fs.groupby("unique_id")["ds"].agg(lambda s: (s.max() - s.min()).days + 1)
    ).all()


def test_publish_is_idempotent_per_run_date(run, tmp_path):
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    tables = run_tables(run)
    first = publish_duckdb(con, tables, AS_OF)
    again = publish_duckdb(con, tables, AS_OF)
    assert first == again
    counts = {t: con.execute(f"select count(*) from marts.{t}").fetchone()[0] for t in first}
    assert counts == first
    publish_duckdb(
        con,
        {"forecast_daily": run.daily.assign(as_of=pd.Timestamp("2026-11-21"))},
        date(2026, 11, 21),
    )
    assert (
        con.execute("select count(*) from marts.forecast_daily").fetchone()[0]
        == 2 * first["forecast_daily"]
    )
    types = dict(
        con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'marts' and table_name = 'forecast_monthly'"
        ).fetchall()
    )
    assert types["p90"] == "DECIMAL(38,9)" and types["actual_to_date"] == "DECIMAL(38,9)"
    assert types["month"] == "DATE" and types["interval_level"] == "DOUBLE"
    s = con.execute(
        "select sum(p50) from marts.forecast_daily where as_of = ?", [AS_OF]
    ).fetchone()[0]
    assert float(s) == pytest.approx(run.daily["p50"].sum(), rel=1e-6)


def test_publish_rolls_back_on_failure(run, tmp_path):
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    publish_duckdb(con, run_tables(run), AS_OF)
    before = con.execute("select count(*) from marts.forecast_daily").fetchone()[0]
    with pytest.raises(KeyError):  # the second table is unknown: the whole run is rolled back
        publish_duckdb(
            con, {"forecast_daily": run.daily.iloc[:5], "no_such_table": run.daily}, AS_OF
        )
    assert con.execute("select count(*) from marts.forecast_daily").fetchone()[0] == before


def test_bigquery_publish_overwrites_the_as_of_partition(run):
    from google.cloud import bigquery

    client = mock.MagicMock()
    payloads = {}

    def load(buf, destination, job_config):
        payloads[destination] = (pq.read_table(io.BytesIO(buf.read())), job_config)
        return mock.MagicMock()

    client.load_table_from_file.side_effect = load
    wh = parse_warehouse("bigquery://orbit-finops/tokenbook")
    jobs = publish_bigquery(client, wh, run_tables(run), AS_OF)
    assert set(jobs) == set(TABLES)
    dest = "orbit-finops.tokenbook_marts.forecast_monthly$20261120"
    table, config = payloads[dest]
    assert config.write_disposition == bigquery.WriteDisposition.WRITE_TRUNCATE
    assert config.source_format == bigquery.SourceFormat.PARQUET
    assert config.time_partitioning.field == "as_of"
    assert {f.name: f.field_type for f in config.schema}["p90"] == "NUMERIC"
    assert str(table.schema.field("p90").type) == "decimal128(38, 9)"
    assert table.num_rows == len(run.monthly)
    assert set(table.column("as_of").to_pylist()) == {AS_OF}


def test_cli_prints_summary_writes_tables_and_charts(tmp_path):
    from typer.testing import CliRunner

    from tokenbook.cli import app

    db = tmp_path / "wh" / "tokenbook.duckdb"
    db.parent.mkdir()
    con = duckdb.connect(str(db))
    make_ledger(con, AS_OF, days=60, seed=9)
    con.close()
    charts = tmp_path / "charts"
    result = CliRunner().invoke(
        app,
        [
            "forecast",
            "--warehouse",
            f"duckdb:///{db}",
            "--charts",
            str(charts),
            "--metrics",
            "spend",
            "--samples",
            "200",
            "--workers",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Next month (2026-12) total spend: p10 $" in result.output  # as-of = last call_date
    assert "Anomalies:" in result.output and "Backtest (held-out cutoffs" in result.output
    pngs = sorted(p.name for p in charts.glob("*.png"))
    assert "total.png" in pngs and any(p.startswith("feature-") for p in pngs)
    assert (charts / "total.png").stat().st_size > 10_000
    con = duckdb.connect(str(db), read_only=True)
    as_of = con.execute("select distinct as_of from marts.forecast_monthly").fetchall()
    con.close()
    assert as_of == [(AS_OF,)]
    bad = CliRunner().invoke(app, ["forecast", "--warehouse", f"duckdb:///{db}", "--as-of", "nope"])
    assert bad.exit_code != 0 and "bad --as-of" in bad.output


def test_bigquery_reads_use_the_marts_dataset_and_parse_as_bigquery_sql():
    import sqlglot

    from forecasting.anomalies import why_sql

    client = mock.MagicMock()
    seen = []

    def query(sql):
        seen.append(sql)
        job = mock.MagicMock()
        job.to_dataframe.return_value = pd.DataFrame(
            {
                "ds": [date(2026, 11, 19), date(2026, 11, 20)],
                "provider": ["openai", "openai"],
                "model": ["gpt-4o-mini"] * 2,
                "feature": ["invoice_triage"] * 2,
                "customer_segment": ["smb"] * 2,
                "spend": [1.5, 2.5],
                "tokens": [100, 200],
                "calls": [3, 4],
            }
        )
        return job

    client.query.side_effect = query
    wh = parse_warehouse("bigquery://orbit-finops/tokenbook")
    frame = load_daily_series(wh, AS_OF, client=client)
    assert len(seen) == 5 and all("`orbit-finops.tokenbook_marts.fct_llm_calls`" in s for s in seen)
    for sql in seen:
        sqlglot.parse_one(sql, read="bigquery")
    assert frame.loc[frame["unique_id"] == "spend|total", "y"].tolist() == [1.5, 2.5]
    flags = pd.DataFrame(
        {
            "ds": [pd.Timestamp("2026-11-20")],
            "series_level": ["feature"],
            "provider": [None],
            "feature": ["invoice_triage"],
        }
    )
    sql = why_sql(flags, "`orbit-finops.tokenbook_marts.fct_llm_calls`", "bigquery")
    assert "date_sub(" in sql
    sqlglot.parse_one(sql, read="bigquery")


def test_forecast_frame_rejects_a_frame_without_its_columns():
    with pytest.raises(ValueError, match="missing columns"):
        forecast_frame(
            pd.DataFrame({"ds": [], "y": []}),
            AS_OF,
            load_events(config=ORG_CONFIG),
            load_fermi_estimates(config=ORG_CONFIG),
            load_budgets(config=ORG_CONFIG),
            CFG,
        )


def test_unlisted_launch_step_is_a_step_not_growth():
    """A launch 11 days before as_of lifts the level 2.9x and is NOT in the events: the next
    month must stay near the post-launch run rate (not compound it as growth) and cover it."""
    from forecasting.models import detect_level_shifts

    as_of = pd.Timestamp("2026-09-30")
    start = pd.Timestamp("2026-07-31")  # 62 days of history, like the demo as of 2026-09-30
    launch = pd.Timestamp("2026-09-19")
    full = synthetic_series(
        "spend|total",
        pd.Timestamp("2026-10-31"),
        days=(pd.Timestamp("2026-10-31") - start).days + 1,
        level=70,
        trend_per_day=0.0,
        launch_day=(launch - start).days,
        launch_lift=1.9,
        seed=11,
    )
    hist = full[full["ds"] <= as_of]
    found = detect_level_shifts(hist["ds"], hist["y"].to_numpy())
    assert len(found) == 1 and abs((found[0] - launch).days) <= 2, found

    none = pd.DataFrame(columns=["ds", "event_name", "kind", "provider", "feature"])
    cfg = ForecastConfig(n_samples=300, workers=1, metrics=("spend",), levels=("total",))
    fermi = pd.DataFrame(columns=["spread"]).rename_axis("feature")
    run = forecast_frame(hist, as_of, none, fermi, pd.Series(dtype=float), cfg)
    oct_ = run.monthly[run.monthly["month"] == pd.Timestamp("2026-10-01")].iloc[0]
    truth = full.loc[full["ds"].dt.month == 10, "y"].sum()
    run_rate = hist["y"].iloc[-7:].mean() * 31  # the post-launch week, scaled to October
    assert 0.8 * run_rate <= oct_["p50"] <= 1.25 * run_rate, (oct_["p50"], run_rate)
    assert oct_["p10"] <= truth <= oct_["p90"], (oct_["p10"], truth, oct_["p90"])
    dec = run.monthly[run.monthly["month"] == pd.Timestamp("2026-12-01")].iloc[0]
    assert dec["p50"] <= 1.5 * run_rate, (dec["p50"], run_rate)


def test_implausible_projection_guard():
    from forecasting.fit import implausible

    hist = pd.DataFrame({"y": np.full(28, 100.0)})
    steady = np.random.default_rng(0).normal(100, 10, (60, 200))
    runaway = steady * np.exp(np.linspace(0, 2, 60))[:, None]
    assert not implausible(steady, hist)
    assert implausible(runaway, hist)
