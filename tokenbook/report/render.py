"""Frames -> one self-contained HTML page (inline CSS, charts as data URIs, no scripts to load).

The HTML is in jinja2 templates (``templates/``, autoescaped): ``report.html.j2`` lays out the
page, ``_parts.html.j2`` holds the parts (a stamped figure, a table, a pill, a chart). This
module prepares plain data for them: which row and column each figure reads, its display text,
the section's notes. It writes no HTML itself.

Every figure is written by :func:`Page.cell`, which stamps it with the query, row and column it
came from (``data-q``, ``data-r``, ``data-c``) and the unformatted value (``data-v``). The page
also carries every query's SQL and rows in ``<script type="application/json" id="report-data">``.
"""

from __future__ import annotations

import json
import math
from datetime import date
from decimal import Decimal
from functools import cache

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from tokenbook.report import charts
from tokenbook.report.data import ReportData, how_to_fill

# Display kinds shown as text (left-aligned); every other kind is a number (class "num").
TEXT_KINDS = ("text", "date", "month")


# ----------------------------------------------------------------------------- values and text


def is_missing(v) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return v is pd.NA or v is pd.NaT


def raw(v) -> str:
    """The exact value as text: Decimal and int as written, float by repr, dates ISO."""
    if is_missing(v):
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, pd.Timestamp):
        return v.date().isoformat() if v == v.normalize() else v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float):
        return repr(v)
    if hasattr(v, "item"):  # numpy scalars
        return raw(v.item())
    return str(v)


def fmt(v, kind: str) -> str:
    """Display text. Money: whole dollars from $1,000, cents from $1, 4 decimals below."""
    if is_missing(v):
        return "—"
    if kind == "text":
        return str(v)
    if kind == "date":
        d = pd.Timestamp(v).date()
        return f"{d:%b} {d.day}, {d:%Y}"
    if kind == "month":
        return f"{pd.Timestamp(v):%b %Y}"
    x = float(v)
    if kind == "usd":
        a = abs(x)
        digits = 0 if a >= 1000 or a == 0 else 2 if a >= 1 else 4
        if 0 < a < 0.001:  # three significant digits: a cheap outcome never shows as $0.0000
            digits = 2 - math.floor(math.log10(a))
        return f"{'-' if x < 0 else ''}${a:,.{digits}f}"
    if kind == "dusd":  # a signed change in dollars
        a = abs(x)
        digits = 0 if a >= 1000 else 2
        return f"{'+' if x > 0 else '-' if x < 0 else ''}${a:,.{digits}f}"
    if kind == "pct":  # a signed change
        return f"{x * 100:+.1f}%"
    if kind == "share":
        return f"{x * 100:.1f}%"
    if kind == "int":
        return f"{x:,.0f}"
    if kind == "ratio":
        return f"{x:.2f}"
    raise ValueError(f"unknown display kind {kind!r}")


# ----------------------------------------------------------------------------- the templates


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("tokenbook.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,  # a misspelt name in a template fails, never renders empty
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _parts():
    """The macros of ``_parts.html.j2``, callable from Python (each returns Markup)."""
    return _environment().get_template("_parts.html.j2").module


# ----------------------------------------------------------------------------- the page


class Page:
    def __init__(self, data: ReportData):
        self.data = data
        self.parts = _parts()

    # one figure ---------------------------------------------------------------------------
    def cell(self, query: str, r: int, col: str, kind: str, tag: str = "td",
             cls: str = "", text: str | None = None) -> Markup:
        frame = self.data.frame(query)
        v = frame.iloc[r][col] if r < len(frame) else None
        shown = fmt(v, kind) if text is None else text
        classes = [cls] if cls else []
        if tag == "td" and kind not in TEXT_KINDS:
            classes.append("num")
        if kind == "pct" and not is_missing(v):
            classes.append("up" if float(v) > 0 else "down" if float(v) < 0 else "")
        return self.parts.cell(
            tag=tag, classes=" ".join(c for c in classes if c) if classes else None,
            query=query, row=r, col=col, kind=kind, value=raw(v), text=shown)

    def value(self, query: str, r: int, col: str):
        frame = self.data.frame(query)
        return frame.iloc[r][col] if r < len(frame) else None

    def table(self, query: str, columns: list[tuple[str, str, str]], total: str = "",
              extra: dict | None = None) -> Markup:
        """``columns``: (column, header, kind). ``extra``: header -> fn(row index) -> a cell."""
        frame = self.data.frame(query)
        if frame.empty:
            res = self.data.results.get(query)
            hint = f" To fill it: {how_to_fill(res.query.tables)}." if res is not None else ""
            return self.parts.no_rows(hint)
        extra = extra or {}
        headers = [(h, "" if kind in TEXT_KINDS else "num") for _, h, kind in columns]
        headers += [(h, None) for h in extra]
        rows = [[self.cell(query, r, c, k) for c, _, k in columns]
                + [fn(r) for fn in extra.values()] for r in range(len(frame))]
        return self.parts.table(headers, rows, total)

    def missing(self, what: str, key: str) -> Markup:
        why = self.data.missing.get(key, "not available in this warehouse")
        return self.parts.missing(key, what, why)

    def _coverage_cell(self, query: str):
        frame = self.data.frame(query)

        def td(r: int) -> Markup:
            kind = frame.iloc[r]["month_kind"] if "month_kind" in frame else ""
            note = "" if kind == "future" else self.partial(frame.iloc[r]["month"])
            return self.parts.td(note, "warn", partial=True) if note else self.parts.td()
        return td

    def partial(self, month) -> str:
        """'' for a month the ledger covers whole; else 'partial: ...' from the ledger's first
        and last call dates (a month before the first load, or still running)."""
        if is_missing(month):
            return ""
        start = pd.Timestamp(month).date().replace(day=1)
        end = (pd.Timestamp(start) + pd.offsets.MonthEnd(0)).date()
        first, last = self.data.data_start, self.data.period.data_end
        if end < first or start > last:
            return ""  # outside the ledger (a future month): not a partial actual
        if first > start:
            return f"partial: the ledger starts {first:%b} {first.day}"
        if last < end:
            return f"partial: the ledger ends {last:%b} {last.day}"
        return ""

    def status(self, text) -> Markup:
        t = "" if is_missing(text) else str(text)
        return self.parts.status(t or "—", {"over": "over", "under": "under"}.get(t, ""))

    def figure(self, uri: str | None, name: str, queries: str, alt: str) -> Markup:
        return self.parts.figure(uri, name, queries, alt)

    # the headline cards -------------------------------------------------------------------
    def headline(self) -> dict:
        p = self.data.period
        if "headline" not in self.data.results:
            return {"missing": self.missing("Headline figures", "headline")}
        h = "headline"
        change = self.value(h, 0, "spend_change_pct")

        def span(col: str, kind: str) -> Markup:
            return self.cell(h, 0, col, kind, tag="span")

        def big(col: str, kind: str) -> Markup:
            return self.cell(h, 0, col, kind, tag="div", cls="big")

        return {
            "missing": None,
            "to_date": p.data_end if p.month_end > p.data_end else None,
            "spend": big("spend_usd", "usd"),
            "arrow": "" if is_missing(change) else ("▲ " if float(change) > 0 else "▼ "),
            "change_pct": span("spend_change_pct", "pct"),
            "change_usd": span("spend_change_usd", "dusd"),
            "previous": span("previous_spend_usd", "usd"),
            "prev_partial": self.data.data_start > p.prev_month,
            "forecast": self._forecast_card(),
            "forecast_missing": self.data.missing.get("forecast_monthly",
                                                      "no forecast run for a later month"),
            "unattributed_share": big("unattributed_share", "share"),
            "unattributed_usd": span("unattributed_usd", "usd"),
            "cache_savings": big("cache_savings_usd", "usd"),
            "cache_hit_rate": span("cache_hit_rate", "share"),
            "missed_cache": span("missed_cache_savings_usd", "usd"),
            "budget": self._budget_card(),
            "invoice": self._invoice_card(),
            "lever": self._lever_card(),
        }

    def _invoice_card(self) -> dict:
        t = "reconciliation_total"
        if not len(self.data.frame(t)):
            return {"missing": self.data.missing.get("reconciliation",
                                                     "no invoice lines for the month")}
        flagged = None
        if "flagged_lines" in self.data.frame(t):
            flagged = self.cell(t, 0, "flagged_lines", "int", tag="span")
        return {
            "missing": None,
            "variance_pct": self.cell(t, 0, "variance_pct", "pct", tag="div", cls="big"),
            "variance_usd": self.cell(t, 0, "variance_usd", "dusd", tag="span"),
            "invoice": self.cell(t, 0, "invoice_cost_usd", "usd", tag="span"),
            "flagged": flagged,
        }

    def _lever_card(self) -> dict | None:
        found = [(lever, res) for lever, res in self.data.levers if len(res.frame)]
        if not found:
            return None
        lever, res = max(found, key=lambda lr: float(lr[1].frame["dollars_usd"].iloc[0]))
        labels = [c for c in res.frame.columns if c != "dollars_usd"]
        return {
            "dollars": self.cell(res.query.name, 0, "dollars_usd", "usd", tag="div", cls="big"),
            "title": lever.title,
            "what": " · ".join(str(res.frame.iloc[0][c]) for c in labels[:2]),
            "label": lever.dollars_label.lower(),
        }

    def _forecast_row(self) -> int | None:
        fm = self.data.frame("forecast_monthly")
        if fm.empty:
            return None
        months = pd.to_datetime(fm["month"]).dt.date
        idx = [i for i, m in enumerate(months) if m == self.data.period.next_month]
        if not idx:
            idx = [i for i, k in enumerate(fm["month_kind"]) if k == "future"]
        return idx[0] if idx else None

    def _forecast_card(self) -> dict | None:
        r = self._forecast_row()
        if r is None:
            return None
        f = "forecast_monthly"
        actual = self.value(f, r, "actual_to_date")
        spent = not is_missing(actual) and float(actual) > 0
        return {
            "month": fmt(self.value(f, r, "month"), "month"),
            "p50": self.cell(f, r, "p50", "usd", tag="div", cls="big"),
            "p10": self.cell(f, r, "p10", "usd", tag="span"),
            "p90": self.cell(f, r, "p90", "usd", tag="span"),
            "level": self.cell(f, r, "interval_level", "share", tag="span"),
            "actual": self.cell(f, r, "actual_to_date", "usd", tag="span") if spent else None,
        }

    def _budget_card(self) -> dict | None:
        b = self.data.frame("budget")
        p = self.data.period
        rows = [i for i in range(len(b)) if b.iloc[i]["budget_level"] == "total"
                and pd.Timestamp(b.iloc[i]["month_start"]).date() == p.month]
        if not rows:
            return None
        r = rows[0]
        return {
            "burned": self.cell("budget", r, "budget_burned_share", "share", tag="div",
                                cls="big"),
            "actual": self.cell("budget", r, "actual_effective_cost_usd", "usd", tag="span"),
            "budget": self.cell("budget", r, "monthly_budget_usd", "usd", tag="span"),
            "status": self.status(b.iloc[r]["budget_status"]),
            "features_over": self.cell("headline", 0, "features_over_budget", "int",
                                       tag="span"),
        }

    # sections -----------------------------------------------------------------------------
    def features(self) -> dict:
        p = self.data.period
        fm = self.data.frame("features_month")
        wk = self.data.frame("features_weekly")
        if "features_month" not in self.data.results:
            return {"missing": self.missing("Cost per outcome", "features_month")}
        last = {}
        series = {}
        if not wk.empty:
            weeks = pd.to_datetime(wk["week_start"]).dt.date
            for i in range(len(wk)):
                if weeks.iloc[i] == p.last_week:
                    last[wk.iloc[i]["feature"]] = i
            for feature, g in wk.groupby("feature"):
                series[feature] = pd.to_numeric(g["cost_per_outcome_usd"], errors="coerce").tolist()

        def wow(col: str):
            def td(r: int) -> Markup:
                i = last.get(fm.iloc[r]["feature"])
                return (self.cell("features_weekly", i, col, "pct") if i is not None
                        else self.parts.td())
            return td

        def spark(r: int) -> Markup:
            # charts.sparkline draws the inline SVG from numbers only
            return self.parts.td(Markup(charts.sparkline(series.get(fm.iloc[r]["feature"], []))))

        def budget(r: int) -> Markup:
            return self.parts.td(self.status(fm.iloc[r]["budget_status"]))

        table = self.table(
            "features_month",
            [("feature", "Feature", "text"), ("effective_cost_usd", "Spend", "usd"),
             ("effective_cost_change_pct", "Δ month", "pct"),
             ("outcomes", "Outcomes", "int"), ("cost_per_outcome_usd", "Cost / outcome", "usd"),
             ("cost_per_outcome_change_pct", "Δ month", "pct")],
            extra={"Per-outcome budget": budget,
                   "Spend WoW": wow("effective_cost_change_pct"),
                   "Cost/outc. WoW": wow("cost_per_outcome_change_pct"),
                   "Cost/outcome by week": spark},
        )
        top = list(fm["feature"].head(7)) if not fm.empty else []
        chart = self.figure(
            charts.feature_trend(wk, "effective_cost_usd", "Weekly spend by feature", top),
            "feature_trend", "features_weekly", "Weekly spend by feature")
        notes = [f"{m:%B} is {self.partial(m)}" for m in (p.month, p.prev_month)
                 if self.partial(m)]
        return {"missing": None, "table": table, "chart": chart, "notes": notes}

    def budget(self) -> dict:
        if "budget" not in self.data.results:
            return {"missing": self.missing("Monthly budget", "budget")}
        b = self.data.frame("budget")
        p = self.data.period
        rows = [i for i in range(len(b)) if pd.Timestamp(b.iloc[i]["month_start"]).date() == p.month]

        def bar(r: int) -> Markup:
            actual, budget = b.iloc[r]["projected_month_end_usd"], b.iloc[r]["monthly_budget_usd"]
            if is_missing(budget) or float(budget) == 0 or is_missing(actual):
                return self.parts.td()
            share = float(actual) / float(budget)
            return self.parts.bar(f"{share:.0%} of budget", f"{min(share, 1) * 100:.0f}%",
                                  "over" if share > 1 else "")

        def line(r: int) -> dict:
            total = b.iloc[r]["budget_level"] == "total"
            cells = [self.cell("budget", r, "cost_centre", "text"),
                     self.cell("budget", r, "monthly_budget_usd", "usd"),
                     self.cell("budget", r, "actual_effective_cost_usd", "usd"),
                     self.cell("budget", r, "projected_month_end_usd", "usd"),
                     self.cell("budget", r, "variance_usd", "dusd"),
                     self.cell("budget", r, "variance_pct", "pct")]
            return {"total": total, "label": "Total" if total else b.iloc[r]["feature"],
                    "cells": cells, "bar": bar(r), "status": self.status(b.iloc[r]["budget_status"])}

        no_budget = None
        if not is_missing(self.value("headline", 0, "no_budget_usd")):
            no_budget = self.cell("headline", 0, "no_budget_usd", "usd", tag="span")
        open_rows = [i for i in range(len(b)) if b.iloc[i]["budget_level"] == "total"
                     and pd.Timestamp(b.iloc[i]["month_start"]).date() == p.next_month]
        next_month = None
        if open_rows:
            r = open_rows[0]
            next_month = {
                "as_of": self.cell("budget", r, "as_of_date", "date", tag="span"),
                "actual": self.cell("budget", r, "actual_effective_cost_usd", "usd", tag="span"),
                "projected": self.cell("budget", r, "projected_month_end_usd", "usd", tag="span"),
                "budget": self.cell("budget", r, "monthly_budget_usd", "usd", tag="span"),
                "status": self.status(b.iloc[r]["budget_status"]),
            }
        return {"missing": None, "lines": [line(r) for r in rows], "no_budget": no_budget,
                "next": next_month}

    def cache(self) -> dict:
        if "cache" not in self.data.results:
            return {"missing": self.missing("Cache", "cache")}
        return {"missing": None, "table": self.table("cache", [
            ("feature", "Feature", "text"), ("calls", "Calls", "int"),
            ("cache_read_share", "Input tokens from cache", "share"),
            ("cache_hit_rate", "Hit rate (could-hit calls)", "share"),
            ("cache_savings_usd", "Saved", "usd"),
            ("missed_cache_savings_usd", "Still to save", "usd")])}

    def chargeback(self) -> dict:
        if "chargeback_team" not in self.data.results:
            return {"missing": self.missing("Chargeback", "chargeback_team")}
        team = self.table("chargeback_team", [
            ("cost_centre", "Cost centre", "text"), ("cost_centre_name", "Name", "text"),
            ("team", "Team", "text"), ("effective_cost_usd", "Charge", "usd"),
            ("share_of_month", "Share", "share")])
        segment = self.table("chargeback_segment", [
            ("customer_segment", "Segment", "text"), ("calls", "Calls", "int"),
            ("effective_cost_usd", "Charge", "usd"), ("share_of_month", "Share", "share")])
        t = self.data.frame("chargeback_team")
        chart = self.figure(
            charts.bars(list(t["team"]), pd.to_numeric(t["effective_cost_usd"]).tolist(),
                        "Charge by team"), "chargeback_team", "chargeback_team", "Charge by team")
        return {"missing": None, "team": team, "segment": segment, "chart": chart}

    def reconciliation(self) -> dict:
        if "reconciliation" not in self.data.results:
            return {"missing": self.missing("Gateway ledger vs vendor invoices",
                                            "reconciliation")}
        frame = self.data.frame("reconciliation")
        cols = [("provider", "Provider", "text")]
        if "model" in frame:
            cols.append(("model", "Model", "text"))
        cols += [("gateway_cost_usd", "Gateway ledger", "usd"),
                 ("invoice_cost_usd", "Invoice", "usd"),
                 ("variance_usd", "Variance", "dusd"), ("variance_pct", "Variance %", "pct")]
        if "gap_class" in frame:
            cols.append(("gap_class", "Gap", "text"))
        extra = {}
        if "flagged" in frame:
            extra["Flag"] = lambda r: (
                self.parts.flag()
                if not is_missing(frame.iloc[r]["flagged"]) and int(frame.iloc[r]["flagged"])
                else self.parts.td())
        total = ""
        if len(self.data.frame("reconciliation_total")):
            t = "reconciliation_total"
            span = 2 if "model" in frame else 1
            total = self.parts.total_row(
                "All providers", span,
                [self.cell(t, 0, "gateway_cost_usd", "usd"),
                 self.cell(t, 0, "invoice_cost_usd", "usd"),
                 self.cell(t, 0, "variance_usd", "dusd"),
                 self.cell(t, 0, "variance_pct", "pct")],
                len(cols) + len(extra) - span - 4)
        reconciled = None
        if "chargeback_reconciled" in self.data.results:
            reconciled = self.table("chargeback_reconciled", [
                ("cost_centre", "Cost centre", "text"), ("team", "Team", "text"),
                ("gateway_effective_cost_usd", "Gateway charge", "usd"),
                ("reconciled_cost_usd", "Invoice (allocated)", "usd"),
                ("difference_usd", "Difference", "dusd")])
        return {"missing": None, "table": self.table("reconciliation", cols, total=total,
                                                     extra=extra),
                "reconciled": reconciled}

    def forecast(self) -> dict:
        if "forecast_monthly" not in self.data.results:
            return {"missing": self.missing("Forecast", "forecast_monthly")}
        p = self.data.period
        fd = self.data.frame("forecast_daily")
        level = None if fd.empty else float(fd["interval_level"].iloc[0])
        chart = self.figure(
            charts.fan_chart(self.data.frame("actual_daily"), fd, level, p.month),
            "fan", "actual_daily,forecast_daily", "Daily spend, actual and forecast interval")
        fm = self.data.frame("forecast_monthly")

        def held(r: int) -> Markup:
            status = fm["backtest_status"].iloc[r] if "backtest_status" in fm else None
            if status == "backtested" and not is_missing(fm["backtest_coverage"].iloc[r]):
                return self.cell("forecast_monthly", r, "backtest_coverage", "share", text=(
                    f"{fmt(fm['backtest_coverage'].iloc[r], 'share')} of "
                    f"{int(fm['backtest_origins'].iloc[r])} months"))
            if status == "backtested":
                return self.parts.td("not backtested this far ahead", "note")
            return self.parts.td(
                "too short to backtest" if status == "too_short" else "not backtested", "note")

        table = self.table("forecast_monthly", [
            ("month", "Month", "month"), ("month_kind", "", "text"),
            ("actual_to_date", "Actual to date", "usd"), ("p10", "p10", "usd"),
            ("p50", "p50", "usd"), ("p90", "p90", "usd"), ("method", "Method", "text"),
            ("monthly_budget_usd", "Monthly budget", "usd"),
            ("prob_over_budget", "P(over budget)", "share")],
            extra={"Ledger": self._coverage_cell("forecast_monthly"),
                   "Backtest: actual inside the band": held,
                   "Error (median)": lambda r: self.cell("forecast_monthly", r,
                                                         "backtest_mdape", "share"),
                   "Run-rate error": lambda r: self.cell("forecast_monthly", r,
                                                         "run_rate_mdape", "share")})
        monthly_backtest = None
        if not self.data.frame("monthly_backtest").empty:
            monthly_backtest = self.table("monthly_backtest", [
                ("pooled_level", "Level", "text"), ("n_series", "Series", "int"),
                ("n_origins", "Months tested", "int"), ("origin_kind", "Origins", "text"),
                ("monthly_coverage", "Held", "share"), ("monthly_mdape", "Error", "share"),
                ("run_rate_mdape", "Run-rate error", "share"),
                ("methods_chosen", "Methods", "text")])
        ev = self.data.frame("forecast_events")
        backtest = None
        if not self.data.frame("backtest").empty:
            def span(col: str, kind: str) -> Markup:
                return self.cell("backtest", 0, col, kind, tag="span")
            backtest = {"level": span("interval_level", "share"),
                        "coverage": span("coverage_calibrated", "share"),
                        "points": span("n_points", "int"), "mase": span("mase", "ratio")}
        return {"missing": None, "chart": chart, "table": table,
                "monthly_backtest": monthly_backtest,
                "events": "; ".join(ev["events_applied"].astype(str)) if not ev.empty else None,
                "backtest": backtest}

    def anomalies(self) -> dict:
        if "anomalies" not in self.data.results:
            return {"missing": self.missing("Anomalies", "anomalies")}
        frame = self.data.frame("anomalies")
        if frame.empty:
            return {"missing": None, "table": None}
        return {"missing": None,
                "level": f"{frame['interval_level'].iloc[0]:.0%}",
                "table": self.table("anomalies", [
                    ("ds", "Day", "date"), ("series", "Series", "text"),
                    ("direction", "", "text"), ("actual", "Actual", "usd"),
                    ("expected", "Expected", "usd"), ("upper", "Upper bound", "usd"),
                    ("why", "Why", "text")])}

    def levers(self) -> dict:
        blocks = []
        for lever, result in self.data.levers:
            name = result.query.name
            frame = result.frame
            labels = [c for c in frame.columns if c != "dollars_usd"]
            cols = [(c, c.replace("_", " ").capitalize(), "text") for c in labels]
            cols.append(("dollars_usd", lever.dollars_label, "usd"))
            blocks.append({
                "top": float(frame["dollars_usd"].iloc[0]) if not frame.empty else 0.0,
                "name": name,
                "title": lever.title,
                "what": lever.what,
                "label": lever.dollars_label.lower(),
                "finding": (" · ".join(str(frame.iloc[0][c]) for c in labels)
                            if not frame.empty else ""),
                "dollars": None if frame.empty else self.cell(name, 0, "dollars_usd", "usd"),
                "table": self.table(name, cols),
            })
        blocks.sort(key=lambda b: -b["top"])
        absent = [k.split("__", 1)[1] for k in self.data.missing if k.startswith("lever__")]
        return {"blocks": blocks, "absent": absent}

    # the whole page -----------------------------------------------------------------------
    def payload(self) -> Markup:
        out = {
            "month": self.data.period.month.isoformat(),
            "data_end": self.data.period.data_end.isoformat(),
            "forecast_as_of": raw(self.data.period.forecast_as_of),
            "missing": self.data.missing,
            "queries": {
                name: {
                    "sql": res.sql,
                    "columns": list(res.frame.columns),
                    "rows": [[raw(v) for v in row] for row in res.frame.itertuples(index=False)],
                }
                for name, res in self.data.results.items()
            },
        }
        # JSON inside <script>: not HTML-escaped (the page reads it back as JSON), but "</"
        # written as "<\/" so no value can close the script element.
        return Markup(json.dumps(out, indent=None).replace("</", "<\\/"))

    def context(self, source_url: str) -> dict:
        """Everything report.html.j2 reads, in page order."""
        return {
            "p": self.data.period,
            "data_start": self.data.data_start,
            "source_url": source_url,
            "headline": self.headline(),
            "features": self.features(),
            "budget": self.budget(),
            "cache": self.cache(),
            "chargeback": self.chargeback(),
            "reconciliation": self.reconciliation(),
            "forecast": self.forecast(),
            "anomalies": self.anomalies(),
            "levers": self.levers(),
            "queries": [(name, res.sql.strip()) for name, res in self.data.results.items()],
            "payload": self.payload(),
        }

    def render(self, source_url: str) -> str:
        return _environment().get_template("report.html.j2").render(self.context(source_url))
