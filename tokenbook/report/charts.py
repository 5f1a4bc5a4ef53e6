"""Charts as self-contained images: matplotlib (Agg) -> SVG -> a base64 ``data:`` URI.

An ``<img>`` per chart keeps each SVG's ids to itself and needs nothing from the network; text is
drawn as paths so no font has to be present where the file is opened.
"""

from __future__ import annotations

import base64
import io
from datetime import date

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
ACCENT = "#2563eb"
BAND = "#93c5fd"
PALETTE = ["#2563eb", "#059669", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#db2777",
           "#65a30d", "#9ca3af"]

_RC = {
    "svg.fonttype": "path",
    "svg.hashsalt": "tokenbook",  # stable ids: the same data gives the same file
    "font.size": 9,
    "axes.edgecolor": GRID,
    "axes.labelcolor": MUTED,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _money_axis(ax) -> None:
    def fmt(v, _pos):
        if abs(v) >= 1000:
            return f"${v / 1000:,.1f}k"
        return f"${v:,.0f}" if abs(v) >= 10 else f"${v:,.2f}"

    ax.yaxis.set_major_formatter(FuncFormatter(fmt))
    ax.grid(axis="y", color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)


def _to_data_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _floats(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce").astype("float64")


def feature_trend(weekly: pd.DataFrame, value: str, title: str, top: list[str]) -> str | None:
    """Weekly lines per feature (the ``top`` features; the rest summed as 'other')."""
    if weekly.empty:
        return None
    with plt.rc_context(_RC):
        df = weekly.assign(v=_floats(weekly[value]), week=pd.to_datetime(weekly["week_start"]))
        fig, ax = plt.subplots(figsize=(9.5, 2.6))
        lines = [(f, df[df["feature"] == f]) for f in top]
        rest = df[~df["feature"].isin(top)]
        if not rest.empty:  # every feature beyond the top ones, summed per week
            other = rest.groupby("week", as_index=False)["v"].sum()
            lines.append(("other", other))
        for i, (feature, s) in enumerate(lines):
            s = s.sort_values("week")
            if s.empty:
                continue
            ax.plot(s["week"], s["v"], marker="o", markersize=2.5, linewidth=1.6,
                    color="#9aa0a6" if feature == "other" and not rest.empty
                    else PALETTE[i % len(PALETTE)], label=feature)
        ax.set_title(title, loc="left", color=INK, fontsize=10)
        _money_axis(ax)
        weeks = sorted(df["week"].unique())
        ax.set_xticks(weeks)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
        ax.legend(frameon=False, fontsize=7.5, ncol=1, loc="upper left",
                  bbox_to_anchor=(1.0, 1.0))
        return _to_data_uri(fig)


def fan_chart(actual: pd.DataFrame, forecast: pd.DataFrame, level: float | None,
              month: date) -> str | None:
    """Daily spend: actuals, then the forecast p50 with its p10-p90 band."""
    if actual.empty and forecast.empty:
        return None
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(9.5, 3.0))
        if not actual.empty:
            ax.plot(pd.to_datetime(actual["ds"]), _floats(actual["spend_usd"]), color=INK,
                    linewidth=1.3, label="actual")
        if not forecast.empty:
            ds = pd.to_datetime(forecast["ds"])
            label = f"p10-p90 ({level:.0%} interval)" if level else "p10-p90"
            ax.fill_between(ds, _floats(forecast["p10"]), _floats(forecast["p90"]), color=BAND,
                            alpha=0.55, linewidth=0, label=label)
            ax.plot(ds, _floats(forecast["p50"]), color=ACCENT, linewidth=1.6,
                    linestyle="--", label="forecast p50")
        start = pd.Timestamp(month)
        end = start + pd.offsets.MonthBegin(1)
        ax.axvspan(start, end, color="#f3f4f6", zorder=0, label="report month")
        _money_axis(ax)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
        ax.set_ylim(bottom=0)
        ax.legend(frameon=False, fontsize=7.5, loc="upper left", ncol=4)
        ax.set_title("Daily AI spend: actual and forecast", loc="left", color=INK, fontsize=10)
        return _to_data_uri(fig)


def bars(labels: list[str], values: list[float], title: str) -> str | None:
    """Horizontal bars, largest on top."""
    if not labels:
        return None
    with plt.rc_context(_RC):
        height = 0.9 + 0.28 * len(labels)
        fig, ax = plt.subplots(figsize=(5.2, height))
        y = list(range(len(labels)))[::-1]
        ax.barh(y, values, color=ACCENT, height=0.6)
        ax.set_yticks(y, labels)
        ax.xaxis.set_major_formatter(FuncFormatter(
            lambda v, _p: f"${v / 1000:,.1f}k" if abs(v) >= 1000 else f"${v:,.0f}"))
        ax.grid(axis="x", color=GRID, linewidth=0.8)
        ax.set_axisbelow(True)
        ax.set_title(title, loc="left", color=INK, fontsize=10)
        return _to_data_uri(fig)


def sparkline(values: list[float], width: int = 110, height: int = 26) -> str:
    """A tiny inline SVG polyline (no axes) for a table cell."""
    pts = [v for v in values if v == v]  # drop NaN
    if len(pts) < 2:
        return ""
    lo, hi = min(pts), max(pts)
    span = (hi - lo) or 1.0
    step = (width - 4) / (len(pts) - 1)
    coords = " ".join(
        f"{2 + i * step:.1f},{height - 3 - (v - lo) / span * (height - 6):.1f}"
        for i, v in enumerate(pts)
    )
    last_x, last_y = coords.split(" ")[-1].split(",")
    color = "#dc2626" if pts[-1] > pts[-2] else "#059669"
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="weekly trend">'
        f'<polyline fill="none" stroke="{MUTED}" stroke-width="1.4" points="{coords}"/>'
        f'<circle cx="{last_x}" cy="{last_y}" r="2.4" fill="{color}"/></svg>'
    )
