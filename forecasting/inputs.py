"""Forecast inputs: known events, Fermi estimates for new features, and feature budgets.

Public vendor price changes are a dbt seed (dbt_project/seeds/forecast_events.csv). Everything
about one organisation comes from its configuration folder (tokenbook/orgconfig): its own
forecast_events.csv, new_feature_estimates.csv and budgets.csv. An absent file means "not
configured": no extra event, no Fermi forecast, no budget. Forecasting reads the CSV files
directly so it runs before or without dbt.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from core.settings import load_settings
from core.textfile import read_utf8

SEEDS = Path(__file__).resolve().parent.parent / "dbt_project" / "seeds"
EVENT_KINDS = ("launch", "price_change", "holiday", "model_switch")
STEP_KINDS = ("launch", "price_change")
# Optional event columns: a planned change's effect on spend from its date on. ``spend_ratio``
# states it; a ``model_switch`` row (``model`` -> ``to_model``) gets it from the price book.
CHANGE_COLUMNS = ("model", "to_model", "spend_ratio")
# Input : output tokens assumed when pricing a model switch (no ledger mix passed).
DEFAULT_TOKEN_MIX = (3.0, 1.0)
FERMI_COLUMNS = (
    "feature",
    "launch_date",
    "daily_active_users",
    "calls_per_user",
    "tokens_per_call",
    "usd_per_million_tokens",
    "spread",
)


def config_dir(folder: Path | str | None = None) -> Path | None:
    """The organisation's configuration folder: ``folder`` when given, else the one the
    settings resolve (TOKENBOOK_CONFIG_DIR, else ./config when it exists), else None."""
    if folder is not None:
        return Path(folder)
    return load_settings().resolved_config_dir


def _config_file(name: str, folder: Path | str | None) -> Path | None:
    base = config_dir(folder)
    path = base / name if base is not None else None
    return path if path is not None and path.is_file() else None


def _read(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"seed {path} is missing: restore it from the repository")
    # Configuration files carry a '#' header (whole lines only; a '#' inside a value is kept).
    raw = read_utf8(path)  # NotUtf8Text (a ValueError) names the file, line and the fix
    text = "".join(line for line in raw.splitlines(True) if not line.lstrip().startswith("#"))
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"seed {path.name} lacks columns {missing}; expected {list(required)}")
    return df


def load_events(path: Path | None = None, config: Path | str | None = None) -> pd.DataFrame:
    """Events with ``ds`` (Timestamp), ``event_name``, ``kind``, ``provider``, ``feature``
    (empty scope = all series) and the optional ``model``, ``to_model``, ``spend_ratio``.
    Without ``path``: the public price changes of the seed plus the organisation's
    forecast_events.csv (configuration folder ``config``), when it has one."""
    if path is None:
        paths = [SEEDS / "forecast_events.csv"]
        own = _config_file("forecast_events.csv", config)
        if own is not None:
            paths.append(own)
        return pd.concat([load_events(p) for p in paths], ignore_index=True)
    df = _read(path, ("event_date", "event_name", "kind", "provider", "feature"))
    bad = sorted(set(df["kind"]) - set(EVENT_KINDS))
    if bad:
        raise ValueError(f"{path.name}: unknown event kinds {bad}; use one of {EVENT_KINDS}")
    df["ds"] = pd.to_datetime(df["event_date"])
    for col in CHANGE_COLUMNS:
        if col not in df:
            df[col] = ""
    ratio = pd.to_numeric(df["spend_ratio"].replace("", None), errors="coerce")
    if (ratio <= 0).any() or (df["spend_ratio"].ne("") & ratio.isna()).any():
        raise ValueError(f"{path.name}: spend_ratio must be a positive number (0.8 = -20%)")
    df["spend_ratio"] = ratio
    switch = df["kind"] == "model_switch"
    if (switch & ((df["model"] == "") | (df["to_model"] == "")) & ratio.isna()).any():
        raise ValueError(
            f"{path.name}: a model_switch row needs model and to_model (or a spend_ratio)"
        )
    return df[["ds", "event_name", "kind", "provider", "feature", *CHANGE_COLUMNS]]


def load_price_book(path: Path | None = None) -> pd.DataFrame:
    """List prices per provider, model and ``valid_from`` (input and output USD per million)."""
    path = path or SEEDS / "price_book_default.csv"
    df = _read(path, ("provider", "model", "valid_from", "input_per_mtok", "output_per_mtok"))
    out = df[["provider", "model"]].copy()
    out["valid_from"] = pd.to_datetime(df["valid_from"])
    for col in ("input_per_mtok", "output_per_mtok"):
        out[col] = pd.to_numeric(df[col].replace("", None), errors="coerce")
    return out.dropna(subset=["input_per_mtok", "output_per_mtok"])


def _blended(book: pd.DataFrame, model: str, when: pd.Timestamp, provider: str = "",
             mix: tuple[float, float] = DEFAULT_TOKEN_MIX) -> float | None:
    rows = book[(book["model"] == model) & (book["valid_from"] <= when)]
    if provider:
        rows = rows[rows["provider"] == provider] if (rows["provider"] == provider).any() else rows
    if rows.empty:
        return None
    r = rows.sort_values("valid_from").iloc[-1]
    return float(mix[0] * r["input_per_mtok"] + mix[1] * r["output_per_mtok"])


def known_changes(events: pd.DataFrame, book: pd.DataFrame | None) -> pd.DataFrame:
    """Planned changes with a spend ratio: events with ``spend_ratio``, model switches priced
    from the price book (``to_model`` / ``model`` at the switch date, a 3:1 input:output token
    mix), and price-book versions (``valid_from``) replacing an earlier price of a model.
    Columns: ds, event_name, provider, feature, model, ratio."""
    rows = []
    ev = events if "spend_ratio" in events else events.assign(spend_ratio=np.nan, model="",
                                                              to_model="")
    for e in ev.itertuples():
        ratio = e.spend_ratio
        if (pd.isna(ratio) and e.kind == "model_switch" and book is not None):
            old = _blended(book, e.model, e.ds, e.provider)
            new = _blended(book, e.to_model, e.ds)
            ratio = new / old if old and new is not None else np.nan
        if pd.notna(ratio):
            # A feature's model switch moves that feature (and its share of the total): its
            # provider and model only price it. Unscoped, it moves the model's series.
            switch = e.kind == "model_switch"
            provider = "" if switch and e.feature else e.provider
            model = "" if switch and e.feature else e.model
            rows.append((e.ds, e.event_name, provider, e.feature, model, float(ratio)))
    if book is not None and len(book):
        b = book.sort_values(["provider", "model", "valid_from"])
        prev = b.groupby(["provider", "model"]).shift(1)
        changed = prev["input_per_mtok"].notna()
        for r, p in zip(b[changed].itertuples(), prev[changed].itertuples(), strict=True):
            w_in, w_out = DEFAULT_TOKEN_MIX
            old = w_in * p.input_per_mtok + w_out * p.output_per_mtok
            new = w_in * r.input_per_mtok + w_out * r.output_per_mtok
            if old > 0 and abs(new / old - 1) > 1e-9:
                name = f"price_book {r.provider}/{r.model}"
                rows.append((r.valid_from, name, r.provider, "", r.model, new / old))
    return pd.DataFrame(rows, columns=["ds", "event_name", "provider", "feature", "model",
                                       "ratio"])


def load_fermi_estimates(path: Path | None = None, config: Path | str | None = None) -> pd.DataFrame:
    """Fermi estimates per feature (index): the organisation's new_feature_estimates.csv, or
    none (empty) when it has not configured any."""
    path = path or _config_file("new_feature_estimates.csv", config)
    if path is None:
        return pd.DataFrame(columns=list(FERMI_COLUMNS)).set_index("feature")
    df = _read(path, FERMI_COLUMNS)
    for col in FERMI_COLUMNS[2:]:
        df[col] = pd.to_numeric(df[col], errors="raise")
    df["launch_date"] = pd.to_datetime(df["launch_date"])
    if (df["spread"] <= 1).any():
        raise ValueError(f"{path.name}: spread is the p90/p50 ratio and must be > 1")
    return df[list(FERMI_COLUMNS)].set_index("feature")


def load_budgets(path: Path | None = None, config: Path | str | None = None) -> pd.Series:
    """Monthly budget in USD per feature (the organisation's budgets.csv); empty when none is
    configured."""
    path = path or _config_file("budgets.csv", config)
    if path is None:
        return pd.Series(dtype=float, name="monthly_budget_usd", index=pd.Index([], name="feature"))
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


def load_events_with(extra: Path | str | None = None, config: Path | str | None = None) -> pd.DataFrame:
    """The events (seed + configuration) plus ``extra``: a CSV with the seed's columns, or a
    demo manifest.json."""
    base = load_events(config=config)
    if extra is None:
        return base
    extra = Path(extra)
    if not extra.exists():
        raise FileNotFoundError(f"events file {extra} does not exist")
    if extra.suffix == ".json":
        try:
            manifest = json.loads(extra.read_text(encoding="utf-8-sig"))
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
            raise ValueError(f"events file {extra} is not a JSON manifest: {exc}") from exc
        more = events_from_manifest(manifest)
    else:
        more = load_events(extra)
    return pd.concat([base, more], ignore_index=True)
