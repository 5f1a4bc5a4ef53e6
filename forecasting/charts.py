"""Fan charts (PNG): daily actuals, the p50 forecast and the p10-p90 band, with flagged days."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def top_features(frame: pd.DataFrame, n: int = 3, days: int = 30) -> list[str]:
    spend = frame[(frame["series_level"] == "feature") & (frame["metric"] == "spend")]
    if spend.empty:
        return []
    recent = spend[spend["ds"] > spend["ds"].max() - pd.Timedelta(days=days)]
    return list(recent.groupby("feature")["y"].sum().sort_values(ascending=False).head(n).index)


def fan_chart(
    actuals: pd.DataFrame,
    forecast: pd.DataFrame,
    title: str,
    path: Path,
    flags: pd.DataFrame | None = None,
    history_days: int = 90,
    unit: str = "USD / day",
) -> Path:
    """One series: ``actuals`` (ds, y), ``forecast`` (ds, p10, p50, p90), ``flags`` (ds, actual)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    a = actuals.sort_values("ds")
    a = a[a["ds"] > a["ds"].max() - pd.Timedelta(days=history_days)]
    f = forecast.sort_values("ds")
    fig, ax = plt.subplots(figsize=(10, 4.2), dpi=110)
    ax.fill_between(
        f["ds"],
        f["p10"].astype(float),
        f["p90"].astype(float),
        color="#4C72B0",
        alpha=0.25,
        linewidth=0,
        label=f"p10-p90 ({f['interval_level'].iloc[0]:.0%} interval, calibrated)",
    )
    ax.plot(f["ds"], f["p50"].astype(float), color="#4C72B0", linewidth=1.6, label="forecast p50")
    ax.plot(a["ds"], a["y"], color="#222222", linewidth=1.1, label="actual")
    if flags is not None and len(flags):
        fl = flags[flags["ds"] >= a["ds"].min()]
        ax.scatter(
            fl["ds"], fl["actual"].astype(float), color="#C44E52", zorder=5, s=28, label="anomaly"
        )
    if len(a):
        ax.axvline(a["ds"].max(), color="#888888", linestyle=":", linewidth=1)
    ax.set_title(title, loc="left", fontsize=11)
    ax.set_ylabel(unit)
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    ax.xaxis.set_major_locator(mdates.MonthLocator())
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %Y"))
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def fan_charts(frame: pd.DataFrame, run, out_dir: Path, n_features: int = 3) -> list[Path]:
    """Charts of total spend and the top features by the last 30 days' spend."""
    out_dir = Path(out_dir)
    wanted = [("spend|total", "Total LLM spend", "total.png")]
    for feat in top_features(frame, n_features):
        wanted.append((f"spend|feature|feature={feat}", f"Spend: {feat}", f"feature-{feat}.png"))
    flags = run.anomalies
    paths = []
    for uid, title, name in wanted:
        fc = run.daily[run.daily["unique_id"] == uid]
        if fc.empty:
            continue
        method = fc["method"].iloc[0]
        fl = flags[(flags["unique_id"] == uid) & flags["is_anomaly"]] if len(flags) else None
        paths.append(
            fan_chart(
                frame[frame["unique_id"] == uid],
                fc,
                f"{title} — as of {run.as_of:%Y-%m-%d} ({method})",
                out_dir / name,
                fl,
            )
        )
    return paths
