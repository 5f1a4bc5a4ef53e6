"""Seed inputs: known events, Fermi estimates for new features, and feature budgets.

All three are dbt seeds (dbt_project/seeds/); forecasting reads the CSV files directly so it runs
before or without dbt.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

SEEDS = Path(__file__).resolve().parent.parent / "dbt_project" / "seeds"
EVENT_KINDS = ("launch", "price_change", "holiday")
STEP_KINDS = ("launch", "price_change")
FERMI_COLUMNS = (
    "feature",
    "launch_date",
    "daily_active_users",
    "calls_per_user",
    "tokens_per_call",
    "usd_per_million_tokens",
    "spread",
)


def _read(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"seed {path} is missing: restore it from the repository")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"seed {path.name} lacks columns {missing}; expected {list(required)}")
    return df


def load_events(path: Path | None = None) -> pd.DataFrame:
    """Events with ``ds`` (Timestamp), ``event_name``, ``kind``, ``provider``, ``feature``
    (empty scope = all series)."""
    path = path or SEEDS / "forecast_events.csv"
    df = _read(path, ("event_date", "event_name", "kind", "provider", "feature"))
    bad = sorted(set(df["kind"]) - set(EVENT_KINDS))
    if bad:
        raise ValueError(f"{path.name}: unknown event kinds {bad}; use one of {EVENT_KINDS}")
    df["ds"] = pd.to_datetime(df["event_date"])
    return df[["ds", "event_name", "kind", "provider", "feature"]]


def load_fermi_estimates(path: Path | None = None) -> pd.DataFrame:
    path = path or SEEDS / "new_feature_estimates.csv"
    df = _read(path, FERMI_COLUMNS)
    for col in FERMI_COLUMNS[2:]:
        df[col] = pd.to_numeric(df[col], errors="raise")
    df["launch_date"] = pd.to_datetime(df["launch_date"])
    if (df["spread"] <= 1).any():
        raise ValueError(f"{path.name}: spread is the p90/p50 ratio and must be > 1")
    return df[list(FERMI_COLUMNS)].set_index("feature")


def load_budgets(path: Path | None = None) -> pd.Series:
    """Monthly budget in USD per feature (features.csv ``monthly_budget_usd``)."""
    path = path or SEEDS / "features.csv"
    df = _read(path, ("feature", "monthly_budget_usd"))
    return pd.to_numeric(df.set_index("feature")["monthly_budget_usd"], errors="raise")


def events_for_series(events: pd.DataFrame, provider: str | None, feature: str | None):
    """The events that concern one series: unscoped ones plus those matching its keys.

    A provider-scoped event concerns series of that provider and the series without a provider
    key (total, features); same for features."""
    if events.empty:
        return events
    prov_ok = (events["provider"] == "") | (provider is None) | (events["provider"] == provider)
    feat_ok = (events["feature"] == "") | (feature is None) | (events["feature"] == feature)
    return events[prov_ok & feat_ok]


def events_from_manifest(manifest: dict) -> pd.DataFrame:
    """Known changes of the demo organisation as event rows (launch, new feature and model
    switch are deliberate changes a real team would list in the events seed; the runaway and
    degraded days are NOT events: they are what anomaly flags must find)."""
    ev = manifest.get("events", {})
    rows = []
    for key in ("launch", "new_feature", "model_switch"):
        if key in ev and ev[key].get("date"):
            rows.append(
                {
                    "ds": pd.Timestamp(ev[key]["date"]),
                    "event_name": f"demo_{key}",
                    "kind": "launch",
                    "provider": "",
                    "feature": ev[key].get("feature", ""),
                }
            )
    return pd.DataFrame(rows, columns=["ds", "event_name", "kind", "provider", "feature"])


def load_events_with(extra: Path | str | None = None) -> pd.DataFrame:
    """The events seed plus ``extra``: a CSV with the seed's columns, or a demo manifest.json."""
    base = load_events()
    if extra is None:
        return base
    extra = Path(extra)
    if not extra.exists():
        raise FileNotFoundError(f"events file {extra} does not exist")
    if extra.suffix == ".json":
        import json

        more = events_from_manifest(json.loads(extra.read_text()))
    else:
        more = load_events(extra)
    return pd.concat([base, more], ignore_index=True)
