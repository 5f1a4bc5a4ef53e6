"""Known changes that move one series: which of the run's planned changes (events with a spend
ratio, priced model switches, price-book versions: ``inputs.known_changes``) reach a series and
by how much, and the daily multiplier they give a forecast made at some origin."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.config import LEVELS


def series_changes(changes: pd.DataFrame, frame: pd.DataFrame, meta: dict) -> list:
    """Known changes that move one series: ``(date, ratio, name)`` with the ratio scaled by the
    share of the series' last 28 days of the same metric that the change's scope holds (a
    feature's model switch moves the total by that feature's share). A scope the series does
    not contain and cannot be split by (e.g. a model's price for a feature) is left out."""
    if changes is None or changes.empty:
        return []
    keys = {c: meta.get(c) for c in LEVELS[meta["series_level"]]}
    out = []
    for c in changes.itertuples():
        scope = {k: v for k, v in (("provider", c.provider), ("feature", c.feature),
                                   ("model", c.model)) if isinstance(v, str) and v}
        if any(k in keys and keys[k] != v for k, v in scope.items()):
            continue  # another feature / provider / model
        share = 1.0
        if not set(scope) <= set(keys):
            both = {**keys, **scope}
            level = next((lv for lv, cols in LEVELS.items() if set(cols) == set(both)), None)
            if level is None:
                continue
            uid = "|".join([meta["metric"], level, *(f"{k}={both[k]}" for k in LEVELS[level])])
            part = frame.loc[frame["unique_id"] == uid, ["ds", "y"]]
            whole = frame.loc[frame["unique_id"] == meta["unique_id"], ["ds", "y"]]
            if part.empty or whole.empty:
                continue
            since = whole["ds"].max() - pd.Timedelta(days=27)
            denom = float(whole.loc[whole["ds"] >= since, "y"].sum())
            share = float(part.loc[part["ds"] >= since, "y"].sum()) / denom if denom > 0 else 0.0
        ratio = 1 + min(share, 1.0) * (c.ratio - 1)
        if abs(ratio - 1) > 1e-9:
            out.append((pd.Timestamp(c.ds), float(ratio), c.event_name))
    return out


def change_multiplier(changes: list, dates: pd.DatetimeIndex, after: pd.Timestamp) -> np.ndarray:
    """Per day of ``dates``: the product of the ratios of known changes dated after ``after``
    and on or before the day."""
    out = np.ones(len(dates))
    for when, ratio, _name in changes:
        if when > after:
            out *= np.where(dates >= when, ratio, 1.0)
    return out
