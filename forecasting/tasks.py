"""The unit of work: one series and what the run knows of it, and the inputs every series of a
run shares. Both travel to the process pool's workers as they are (picklable dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from forecasting.config import KEY_COLUMNS, ForecastConfig

META_COLUMNS = ("unique_id", "series_level", "metric", *KEY_COLUMNS)


@dataclass(frozen=True)
class SeriesTask:
    """One series: its identity (``meta``: META_COLUMNS, None for a key it has not), its daily
    ``history`` (ds, y; sorted), the spec its spend series chose (``spec_hint``: tokens and
    calls reuse it) and the known changes ``(date, ratio, name)`` that move it."""

    meta: dict
    history: pd.DataFrame
    spec_hint: str | None = None
    changes: tuple = ()

    @property
    def shape_key(self) -> str:
        """The series without its metric: ``spend|feature|feature=x`` and
        ``tokens|feature|feature=x`` share ``feature|feature=x`` (and the spend one's spec)."""
        return self.meta["unique_id"].split("|", 1)[1]


@dataclass(frozen=True)
class RunInputs:
    """What every series of one run shares."""

    as_of: pd.Timestamp
    cfg: ForecastConfig
    events: pd.DataFrame
    fermi: pd.DataFrame  # Fermi estimates per feature (index)


def horizon_dates(as_of: pd.Timestamp, months: int) -> pd.DatetimeIndex:
    """From the day after ``as_of`` to the end of the month ``months`` after as_of's month."""
    end = (as_of.to_period("M") + months).to_timestamp(how="end").normalize()
    return pd.date_range(as_of + pd.Timedelta(days=1), end, freq="D")


def split_series(frame: pd.DataFrame) -> list[SeriesTask]:
    """One task per ``unique_id`` of a long frame (in id order), keys missing -> None."""
    tasks = []
    for _uid, g in frame.groupby("unique_id", sort=True):
        meta = {c: (None if pd.isna(g[c].iloc[0]) else g[c].iloc[0]) for c in META_COLUMNS}
        tasks.append(SeriesTask(meta, g[["ds", "y"]].sort_values("ds").reset_index(drop=True)))
    return tasks


def series_tasks(frame: pd.DataFrame, fermi: pd.DataFrame, cfg: ForecastConfig) -> list[SeriesTask]:
    """The run's series: those of ``cfg.levels`` x ``cfg.metrics`` in the frame, then one per
    metric for each feature with a Fermi estimate and no data yet (it still gets a forecast)."""
    frame = frame[frame["series_level"].isin(cfg.levels) & frame["metric"].isin(cfg.metrics)]
    tasks = split_series(frame)
    if "feature" in cfg.levels:
        seen = set(frame.loc[frame["series_level"] == "feature", "feature"])
        for feature in fermi.index:
            if feature in seen:
                continue
            for metric in cfg.metrics:
                meta = {c: None for c in META_COLUMNS}
                meta.update(
                    unique_id=f"{metric}|feature|feature={feature}",
                    series_level="feature",
                    metric=metric,
                    feature=feature,
                )
                tasks.append(SeriesTask(meta, pd.DataFrame({"ds": pd.to_datetime([]), "y": []})))
    return tasks
