"""Anomaly flags: a planted spike is flagged by a fit that did not see it, other days rarely
are, known launches are not flags, and each flag gets a ``why`` from the ledger."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from core.warehouse import parse_warehouse
from forecasting.anomalies import score_series
from forecasting.config import ForecastConfig
from forecasting.inputs import events_from_manifest, load_budgets, load_fermi_estimates
from forecasting.job import forecast_warehouse, score_day_warehouse
from forecasting.pipeline import forecast_frame
from forecasting.synthetic import make_ledger, synthetic_series

# The forecasts below read an organisation's budgets from its own configuration folder, written
# here with invented feature names (not the demo company's); it configures no Fermi estimate.
ORG_CONFIG = Path(tempfile.mkdtemp(prefix="org-config-"))
(ORG_CONFIG / "budgets.csv").write_text(
    "feature,monthly_budget_usd\ninvoice_triage,900.00\nlead_scoring,2000.00\npolicy_qa,70.00\n",
    encoding="utf-8",
)

AS_OF = date(2026, 11, 20)
SPIKE_DAY = 95  # 2026-10-17 for 120 days ending 2026-11-20
NO_EVENTS = pd.DataFrame(columns=["ds", "event_name", "kind", "provider", "feature"])
CFG = ForecastConfig(
    n_samples=200, workers=2, metrics=("spend",), levels=("total", "provider", "feature")
)


@pytest.fixture(scope="module")
def run():
    parts = [
        synthetic_series(
            "spend|total", AS_OF, level=400, spike_day=SPIKE_DAY, spike_factor=2.0, seed=11
        ),
        synthetic_series(
            "spend|provider|provider=openai",
            AS_OF,
            level=250,
            seed=12,
            series_level="provider",
            provider="openai",
        ),
        synthetic_series(
            "spend|provider|provider=anthropic",
            AS_OF,
            level=150,
            noise=0.12,
            seed=13,
            series_level="provider",
            provider="anthropic",
        ),
        synthetic_series(
            "spend|feature|feature=invoice_triage",
            AS_OF,
            level=120,
            seed=14,
            spike_day=SPIKE_DAY,
            spike_factor=4.0,
            series_level="feature",
            feature="invoice_triage",
        ),
        synthetic_series(
            "spend|feature|feature=lead_scoring",
            AS_OF,
            level=90,
            noise=0.15,
            seed=15,
            series_level="feature",
            feature="lead_scoring",
        ),
        synthetic_series(
            "spend|feature|feature=policy_qa",
            AS_OF,
            level=60,
            seed=16,
            weekly_amplitude=0.4,
            series_level="feature",
            feature="policy_qa",
        ),
    ]
    frame = pd.concat(parts, ignore_index=True)
    return forecast_frame(
        frame, AS_OF, NO_EVENTS, load_fermi_estimates(config=ORG_CONFIG), load_budgets(config=ORG_CONFIG), CFG
    )


def test_planted_spike_is_flagged_and_other_days_rarely(run):
    a = run.anomalies
    spike = pd.Timestamp(AS_OF) - pd.Timedelta(days=119 - SPIKE_DAY)
    hit = a[(a["ds"] == spike) & a["is_anomaly"]].set_index("unique_id")
    assert {"spend|total", "spend|feature|feature=invoice_triage"} <= set(hit.index)
    assert hit.loc["spend|feature|feature=invoice_triage", "direction"] == "above"
    assert hit.loc["spend|feature|feature=invoice_triage", "severity"] > 1
    others = a[~((a["ds"] == spike) & a["unique_id"].isin(hit.index))]
    assert len(others) > 500  # 6 series x ~90 scored days
    assert others["is_anomaly"].mean() <= 0.01


def test_flag_rows_carry_level_bounds_version_and_an_unseen_fit(run):
    a = run.anomalies
    assert set(a["interval_level"]) == {0.99}
    assert (a["lower"] <= a["expected"]).all() and (a["expected"] <= a["upper"]).all()
    assert (a["fit_through"] < a["ds"]).all()  # the fit never saw the day it scores
    assert ((a["ds"] - a["fit_through"]).dt.days <= 7).all()  # weekly refits
    assert a["model_version"].str.startswith("tb-fc-1/").all()
    f = a[a["is_anomaly"]]
    expected_sev = np.where(
        f["direction"] == "above",
        (f["actual"] - f["upper"]) / (f["upper"] - f["lower"]),
        (f["lower"] - f["actual"]) / (f["upper"] - f["lower"]),
    )
    np.testing.assert_allclose(f["severity"], expected_sev, rtol=1e-9)
    assert set(a["series_level"]) == {"total", "provider", "feature"}


def test_known_launch_is_recorded_not_flagged():
    h = synthetic_series(
        "spend|feature|feature=lead_scoring",
        AS_OF,
        level=100,
        noise=0.05,
        launch_day=80,
        launch_lift=1.5,
        seed=3,
    )[["ds", "y"]]
    launch = h["ds"].iloc[80]
    plain = score_series(h, pd.Timestamp(AS_OF), 0.99, n_samples=300)
    assert plain.loc[plain["ds"] == launch, "is_anomaly"].item()  # an unlisted launch is news
    events = pd.DataFrame(
        {
            "ds": [launch],
            "event_name": ["lead_scoring_v2"],
            "kind": ["launch"],
            "provider": [""],
            "feature": ["lead_scoring"],
        }
    )
    known = score_series(h, pd.Timestamp(AS_OF), 0.99, events=events, n_samples=300)
    day = known[known["ds"] == launch].iloc[0]
    assert day["outside_interval"] and not day["is_anomaly"]
    assert day["known_event"] == "lead_scoring_v2"
    assert not known.loc[known["ds"] >= launch, "is_anomaly"].any()


def test_events_from_demo_manifest():
    manifest = {
        "events": {
            "launch": {"feature": "lead_scoring", "date": "2026-09-12"},
            "runaway_day": {"feature": "churn_explainer", "date": "2026-08-30"},
            "model_switch": {"feature": "invoice_triage", "date": "2026-09-27"},
        }
    }
    ev = events_from_manifest(manifest)
    assert list(ev["event_name"]) == ["demo_launch", "demo_model_switch"]  # runaway is no event
    assert set(ev["kind"]) == {"launch"}


@pytest.fixture(scope="module")
def ledger_warehouse(tmp_path_factory):
    path = tmp_path_factory.mktemp("wh") / "tokenbook.duckdb"
    wh = parse_warehouse(f"duckdb:///{path}")
    con = duckdb.connect(str(path))
    spike = {
        "day": 45,
        "feature": "lead_scoring",
        "provider": "openai",
        "model": "o4-mini",
        "segment": "smb",
        "template": "scoring_agent_loop",
        "calls": 300,
        "tokens": 8000,
    }
    make_ledger(con, AS_OF, days=63, seed=5, spike=spike)
    con.close()
    return wh, pd.Timestamp(AS_OF) - pd.Timedelta(days=62 - 45)


def test_warehouse_run_flags_the_spike_with_a_why(ledger_warehouse):
    wh, spike_day = ledger_warehouse
    cfg = CFG
    run = forecast_warehouse(wh, AS_OF, cfg)
    con = duckdb.connect(str(wh.path), read_only=True)
    flags = (
        con.execute(
            "select unique_id, why, severity from marts.anomaly_flags "
            "where as_of = ? and ds = ? and is_anomaly",
            [AS_OF, spike_day.date()],
        )
        .df()
        .set_index("unique_id")
    )
    con.close()
    assert "spend|feature|feature=lead_scoring" in flags.index
    why = flags.loc["spend|feature|feature=lead_scoring", "why"]
    assert any(k in why for k in ("o4-mini", "smb", "scoring_agent_loop")), why
    assert "spend|total" in flags.index
    assert run.summary()["anomalies"] >= 2


def test_daily_scoring_rewrites_only_its_day(ledger_warehouse):
    wh, spike_day = ledger_warehouse
    cfg = replace(CFG, workers=1)
    first = score_day_warehouse(wh, spike_day.date(), cfg)
    again = score_day_warehouse(wh, spike_day.date(), cfg)
    assert first == again and first["anomalies"] >= 1
    con = duckdb.connect(str(wh.path), read_only=True)
    rows = con.execute(
        "select count(*), count(distinct ds), bool_or(is_anomaly) from marts.anomaly_flags "
        "where as_of = ?",
        [spike_day.date()],
    ).fetchone()
    con.close()
    assert rows[1] == 1 and rows[2]  # one day scored, flagged
    assert rows[0] == first["scored_series"]


def test_why_skips_a_dimension_the_organisation_does_not_use():
    """An organisation without prompt templates or segments: every call's template is '(none)'
    and its segment null, so those dimensions cannot say what moved; the model that did is
    named, and a flag with nothing but unused dimensions says no single driver."""
    from forecasting.anomalies import compose_why

    flags = pd.DataFrame({"series_level": ["feature", "feature"], "direction": ["below", "above"]})
    rows = [
        # flag 0: the drop is in one of two models; template and segment are unused
        (0, "model", "haiku-x", 0.02, 0.30),
        (0, "model", "mini-y", 0.10, 0.12),
        (0, "prompt_template_id", "(none)", 0.12, 0.42),
        (0, "customer_segment", None, 0.12, 0.42),
        (0, "provider", "vendorq", 0.12, 0.42),
        # flag 1: only unused dimensions and one provider
        (1, "prompt_template_id", "(none)", 0.90, 0.40),
        (1, "customer_segment", None, 0.90, 0.40),
    ]
    breakdown = pd.DataFrame(rows, columns=["flag_id", "dimension", "value", "day_usd", "base_usd"])
    breakdown["delta_usd"] = breakdown["day_usd"] - breakdown["base_usd"]
    why = compose_why(flags, breakdown)
    assert "model haiku-x $0.02 vs $0.30/day" in why[0], why[0]
    assert "(none)" not in why[0] and "None" not in why[0], why[0]
    assert why[1] == "no single model, segment or template drove it", why[1]
    # a template that IS used (two values) still explains a move
    used = pd.DataFrame(
        [(0, "prompt_template_id", "(none)", 0.30, 0.02), (0, "prompt_template_id", "tpl_a", 0.0, 0.0)],
        columns=["flag_id", "dimension", "value", "day_usd", "base_usd"],
    )
    used["delta_usd"] = used["day_usd"] - used["base_usd"]
    assert "prompt_template_id (none)" in compose_why(flags.iloc[[1]], used)[0]
