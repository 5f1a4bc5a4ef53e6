"""Frames -> one self-contained HTML page (inline CSS, charts as data URIs, no scripts to load).

Every figure is written by :func:`Page.cell`, which stamps it with the query, row and column it
came from (``data-q``, ``data-r``, ``data-c``) and the unformatted value (``data-v``). The page
also carries every query's SQL and rows in ``<script type="application/json" id="report-data">``.
"""

from __future__ import annotations

import html
import json
import math
from datetime import date
from decimal import Decimal

import pandas as pd

from tokenbook.report import charts
from tokenbook.report.data import ReportData, how_to_fill

UNATTRIBUTED = "(unattributed)"


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


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


# ----------------------------------------------------------------------------- the page


CSS = """
:root { --ink:#111827; --muted:#6b7280; --line:#e5e7eb; --bg:#f9fafb; --accent:#2563eb;
        --good:#059669; --bad:#dc2626; --warn:#d97706; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 28px 28px 60px; }
header h1 { font-size: 26px; margin: 0 0 4px; letter-spacing: -0.01em; }
header p { margin: 0; color: var(--muted); }
section { background:#fff; border:1px solid var(--line); border-radius:10px; padding:18px 20px;
          margin-top:18px; }
section h2 { font-size: 17px; margin: 0 0 4px; }
section p.lead { margin: 0 0 12px; color: var(--muted); }
.cards { display:grid; grid-template-columns: repeat(4, 1fr); gap:12px; margin-top:18px; }
.card { background:#fff; border:1px solid var(--line); border-radius:10px; padding:14px 16px; }
.card .label { color:var(--muted); font-size:12px; text-transform:uppercase;
               letter-spacing:.04em; }
.card .big { font-size:24px; font-weight:650; margin:4px 0 2px; font-variant-numeric: tabular-nums; }
.card .sub { color:var(--muted); font-size:12.5px; }
table { width:100%; border-collapse:collapse; font-variant-numeric: tabular-nums; }
th { text-align:left; font-weight:600; color:var(--muted); font-size:12px; border-bottom:1px solid
     var(--line); padding:6px 8px; white-space:nowrap; }
td { border-bottom:1px solid #f1f5f9; padding:6px 8px; vertical-align:middle; }
td.num, th.num { text-align:right; white-space:nowrap; }
tr.total td { font-weight:650; border-top:1px solid var(--line); }
.up { color: var(--bad); } .down { color: var(--good); }
.pill { display:inline-block; padding:1px 8px; border-radius:999px; font-size:12px;
        background:#f3f4f6; color:var(--muted); }
.pill.over { background:#fee2e2; color:#991b1b; } .pill.under { background:#d1fae5; color:#065f46; }
.pill.flag { background:#fef3c7; color:#92400e; }
.bar { position:relative; height:8px; background:#f3f4f6; border-radius:4px; min-width:90px; }
.bar span { position:absolute; left:0; top:0; bottom:0; border-radius:4px; background:var(--good); }
.bar span.over { background:var(--bad); }
figure { margin: 8px 0 12px; }
figure img { width:100%; height:auto; display:block; }
figure.narrow img { width:auto; max-width:100%; }
.scroll { overflow-x:auto; }
.grid2 { display:grid; grid-template-columns: 1fr 1fr; gap:18px; align-items:start; }
a { color: var(--accent); text-decoration: none; }
.note { color:var(--muted); font-style: italic; }
.sub.warn { color: var(--warn); }
.why { color:#374151; font-size:13px; }
details { margin-top:10px; } details pre { white-space:pre-wrap; font-size:11.5px;
          background:#f8fafc; border:1px solid var(--line); padding:8px; border-radius:6px; }
footer { margin-top:22px; color:var(--muted); font-size:12px; }
@media print { body { background:#fff; } section, .card { break-inside: avoid; } }
"""


class Page:
    def __init__(self, data: ReportData):
        self.data = data

    # one figure ---------------------------------------------------------------------------
    def cell(self, query: str, r: int, col: str, kind: str, tag: str = "td",
             cls: str = "", text: str | None = None) -> str:
        frame = self.data.frame(query)
        v = frame.iloc[r][col] if r < len(frame) else None
        shown = fmt(v, kind) if text is None else text
        classes = [cls] if cls else []
        if tag == "td" and kind not in ("text", "date", "month"):
            classes.append("num")
        if kind == "pct" and not is_missing(v):
            classes.append("up" if float(v) > 0 else "down" if float(v) < 0 else "")
        cls_attr = f' class="{" ".join(c for c in classes if c)}"' if classes else ""
        return (
            f'<{tag}{cls_attr} data-q="{esc(query)}" data-r="{r}" data-c="{esc(col)}" '
            f'data-kind="{kind}" data-v="{esc(raw(v))}">{esc(shown)}</{tag}>'
        )

    def value(self, query: str, r: int, col: str):
        frame = self.data.frame(query)
        return frame.iloc[r][col] if r < len(frame) else None

    def table(self, query: str, columns: list[tuple[str, str, str]], total: str = "",
              extra: dict | None = None) -> str:
        """``columns``: (column, header, kind). ``extra``: header -> fn(row index) -> '<td>'."""
        frame = self.data.frame(query)
        if frame.empty:
            res = self.data.results.get(query)
            hint = f" To fill it: {how_to_fill(res.query.tables)}." if res is not None else ""
            return f'<p class="note">No rows for this period.{esc(hint)}</p>'
        extra = extra or {}
        head = "".join(
            f'<th class="{"" if kind in ("text", "date", "month") else "num"}">{esc(h)}</th>'
            for _, h, kind in columns
        ) + "".join(f"<th>{esc(h)}</th>" for h in extra)
        rows = []
        for r in range(len(frame)):
            cells = "".join(self.cell(query, r, c, k) for c, _, k in columns)
            cells += "".join(fn(r) for fn in extra.values())
            rows.append(f"<tr>{cells}</tr>")
        return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
                f"<tbody>{''.join(rows)}{total}</tbody></table></div>")

    def missing(self, what: str, key: str) -> str:
        why = self.data.missing.get(key, "not available in this warehouse")
        return f'<p class="note" data-missing="{esc(key)}">{esc(what)}: {esc(why)}.</p>'

    def _coverage_cell(self, query: str):
        frame = self.data.frame(query)

        def td(r: int) -> str:
            kind = frame.iloc[r]["month_kind"] if "month_kind" in frame else ""
            note = "" if kind == "future" else self.partial(frame.iloc[r]["month"])
            return f'<td class="warn" data-partial="1">{esc(note)}</td>' if note else "<td></td>"
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

    @staticmethod
    def status(text) -> str:
        t = "" if is_missing(text) else str(text)
        cls = {"over": "over", "under": "under"}.get(t, "")
        return f'<span class="pill {cls}">{esc(t or "—")}</span>'

    @staticmethod
    def figure(uri: str | None, name: str, queries: str, alt: str) -> str:
        if not uri:
            return f'<p class="note">No data for the {esc(name)} chart.</p>'
        return (f'<figure data-chart="{esc(name)}" data-q="{esc(queries)}">'
                f'<img src="{uri}" alt="{esc(alt)}"></figure>')

    # sections -----------------------------------------------------------------------------
    def headline(self) -> str:
        p = self.data.period
        if "headline" not in self.data.results:
            return self.missing("Headline figures", "headline")
        h = "headline"
        cards = []
        change = self.value(h, 0, "spend_change_pct")
        to_date = ""
        if p.month_end > p.data_end:
            to_date = f" (to {p.data_end:%b} {p.data_end.day})"
        cards.append(
            f'<div class="card"><div class="label">AI spend, {p.month:%B %Y}{to_date}</div>'
            f'{self.cell(h, 0, "spend_usd", "usd", tag="div", cls="big")}'
            f'<div class="sub">effective cost, all providers</div></div>'
        )
        arrow = "" if is_missing(change) else ("▲ " if float(change) > 0 else "▼ ")
        partial = ""
        if self.data.data_start > p.prev_month:
            partial = (f'<div class="sub warn">the ledger starts {self.data.data_start:%b} '
                       f"{self.data.data_start.day}: {p.prev_month:%B} is partial</div>")
        cards.append(
            f'<div class="card"><div class="label">Change vs {p.prev_month:%B}</div>'
            f'<div class="big">{arrow}{self.cell(h, 0, "spend_change_pct", "pct", tag="span")}'
            f'</div><div class="sub">{self.cell(h, 0, "spend_change_usd", "dusd", tag="span")}'
            f' against {self.cell(h, 0, "previous_spend_usd", "usd", tag="span")}</div>'
            f"{partial}</div>"
        )
        cards.append(self._forecast_card())
        cards.append(
            f'<div class="card"><div class="label">Unattributed spend</div>'
            f'{self.cell(h, 0, "unattributed_share", "share", tag="div", cls="big")}'
            f'<div class="sub">{self.cell(h, 0, "unattributed_usd", "usd", tag="span")} '
            f'without a feature or segment tag</div></div>'
        )
        cards.append(
            f'<div class="card"><div class="label">Prompt-cache savings</div>'
            f'{self.cell(h, 0, "cache_savings_usd", "usd", tag="div", cls="big")}'
            f'<div class="sub">hit rate {self.cell(h, 0, "cache_hit_rate", "share", tag="span")};'
            f' {self.cell(h, 0, "missed_cache_savings_usd", "usd", tag="span")} more possible'
            f' (weeks starting in {p.month:%B})</div></div>'
        )
        cards.append(self._budget_card())
        cards.append(self._invoice_card())
        cards.append(self._lever_card())
        return f'<div class="cards">{"".join(cards)}</div>'

    def _invoice_card(self) -> str:
        t = "reconciliation_total"
        if not len(self.data.frame(t)):
            why = self.data.missing.get("reconciliation", "no invoice lines for the month")
            return ('<div class="card"><div class="label">Invoice vs ledger</div>'
                    f'<div class="big">—</div><div class="sub">{esc(why)}</div></div>')
        flagged = ""
        if "flagged_lines" in self.data.frame(t):
            flagged = (f' · {self.cell(t, 0, "flagged_lines", "int", tag="span")} '
                       "line(s) over threshold")
        return (
            f'<div class="card"><div class="label">Invoice vs ledger, '
            f'{self.data.period.month:%B}</div>'
            f'{self.cell(t, 0, "variance_pct", "pct", tag="div", cls="big")}'
            f'<div class="sub">{self.cell(t, 0, "variance_usd", "dusd", tag="span")}: invoiced '
            f'{self.cell(t, 0, "invoice_cost_usd", "usd", tag="span")}{flagged}</div></div>'
        )

    def _lever_card(self) -> str:
        found = [(lever, res) for lever, res in self.data.levers if len(res.frame)]
        if not found:
            return ('<div class="card"><div class="label">Largest saving</div>'
                    '<div class="big">—</div><div class="sub">no savings lever found</div></div>')
        lever, res = max(found, key=lambda lr: float(lr[1].frame["dollars_usd"].iloc[0]))
        labels = [c for c in res.frame.columns if c != "dollars_usd"]
        what = " · ".join(str(res.frame.iloc[0][c]) for c in labels[:2])
        return (
            f'<div class="card"><div class="label">Largest saving lever</div>'
            f'{self.cell(res.query.name, 0, "dollars_usd", "usd", tag="div", cls="big")}'
            f'<div class="sub">{esc(lever.title)} ({esc(what)}); '
            f'{esc(lever.dollars_label.lower())}</div></div>'
        )

    def _forecast_row(self) -> int | None:
        fm = self.data.frame("forecast_monthly")
        if fm.empty:
            return None
        months = pd.to_datetime(fm["month"]).dt.date
        idx = [i for i, m in enumerate(months) if m == self.data.period.next_month]
        if not idx:
            idx = [i for i, k in enumerate(fm["month_kind"]) if k == "future"]
        return idx[0] if idx else None

    def _forecast_card(self) -> str:
        r = self._forecast_row()
        if r is None:
            return ('<div class="card"><div class="label">Forecast</div><div class="big">—</div>'
                    f'<div class="sub">{esc(self.data.missing.get("forecast_monthly", "no forecast run for a later month"))}'
                    "</div></div>")
        f = "forecast_monthly"
        month = self.value(f, r, "month")
        actual = self.value(f, r, "actual_to_date")
        so_far = ""
        if not is_missing(actual) and float(actual) > 0:
            so_far = f'; {self.cell(f, r, "actual_to_date", "usd", tag="span")} spent so far'
        return (
            f'<div class="card"><div class="label">Forecast, {fmt(month, "month")} (p50)</div>'
            f'{self.cell(f, r, "p50", "usd", tag="div", cls="big")}'
            f'<div class="sub">p10 {self.cell(f, r, "p10", "usd", tag="span")} – p90 '
            f'{self.cell(f, r, "p90", "usd", tag="span")}, '
            f'{self.cell(f, r, "interval_level", "share", tag="span")} interval{so_far}</div></div>'
        )

    def _budget_card(self) -> str:
        b = self.data.frame("budget")
        p = self.data.period
        rows = [i for i in range(len(b)) if b.iloc[i]["budget_level"] == "total"
                and pd.Timestamp(b.iloc[i]["month_start"]).date() == p.month]
        if not rows:
            return ('<div class="card"><div class="label">Budget</div><div class="big">—</div>'
                    '<div class="sub">no budget lines for the month</div></div>')
        r = rows[0]
        return (
            f'<div class="card"><div class="label">Monthly budget used, {p.month:%B}</div>'
            f'{self.cell("budget", r, "budget_burned_share", "share", tag="div", cls="big")}'
            f'<div class="sub">{self.cell("budget", r, "actual_effective_cost_usd", "usd", tag="span")}'
            f' of {self.cell("budget", r, "monthly_budget_usd", "usd", tag="span")} · '
            f'{self.status(b.iloc[r]["budget_status"])} · '
            f'{self.cell("headline", 0, "features_over_budget", "int", tag="span")} feature(s) over'
            "</div></div>"
        )

    def features(self) -> str:
        p = self.data.period
        fm = self.data.frame("features_month")
        wk = self.data.frame("features_weekly")
        if "features_month" not in self.data.results:
            return self._section("features", "Spend and cost per outcome by feature",
                                 self.missing("Cost per outcome", "features_month"))
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
            def td(r: int) -> str:
                i = last.get(fm.iloc[r]["feature"])
                return self.cell("features_weekly", i, col, "pct") if i is not None else "<td></td>"
            return td

        def spark(r: int) -> str:
            return f"<td>{charts.sparkline(series.get(fm.iloc[r]['feature'], []))}</td>"

        def budget(r: int) -> str:
            return f"<td>{self.status(fm.iloc[r]['budget_status'])}</td>"

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
        lead = (f"What each feature cost in {p.month:%B %Y} and per successful outcome "
                "(a logical request that succeeded, retries included); Δ month is the change "
                f"against {p.prev_month:%B}, WoW the change in the week of "
                f"{p.last_week:%b} {p.last_week.day} against the week before. Per-outcome "
                "budget compares cost per outcome with the feature's budget per outcome "
                "(the monthly budgets are in Monthly budget status)."
                + "".join(f" Note: {n}." for n in notes))
        return self._section("features", "Spend and cost per outcome by feature",
                             f'<p class="lead">{esc(lead)}</p>{table}{chart}')

    def budget(self) -> str:
        if "budget" not in self.data.results:
            return self._section("budget", "Monthly budget status",
                                 self.missing("Monthly budget", "budget"))
        b = self.data.frame("budget")
        p = self.data.period
        rows = [i for i in range(len(b)) if pd.Timestamp(b.iloc[i]["month_start"]).date() == p.month]

        def bar(r: int) -> str:
            actual, budget = b.iloc[r]["projected_month_end_usd"], b.iloc[r]["monthly_budget_usd"]
            if is_missing(budget) or float(budget) == 0 or is_missing(actual):
                return "<td></td>"
            share = float(actual) / float(budget)
            cls = "over" if share > 1 else ""
            return (f'<td><div class="bar" title="{share:.0%} of budget"><span class="{cls}" '
                    f'style="width:{min(share, 1) * 100:.0f}%"></span></div></td>')

        def line(r: int) -> str:
            label = "Total" if b.iloc[r]["budget_level"] == "total" else b.iloc[r]["feature"]
            cls = ' class="total"' if b.iloc[r]["budget_level"] == "total" else ""
            return (f"<tr{cls}><td>{esc(label)}</td>{self.cell('budget', r, 'cost_centre', 'text')}"
                    f"{self.cell('budget', r, 'monthly_budget_usd', 'usd')}"
                    f"{self.cell('budget', r, 'actual_effective_cost_usd', 'usd')}"
                    f"{self.cell('budget', r, 'projected_month_end_usd', 'usd')}"
                    f"{self.cell('budget', r, 'variance_usd', 'dusd')}"
                    f"{self.cell('budget', r, 'variance_pct', 'pct')}{bar(r)}"
                    f"<td>{self.status(b.iloc[r]['budget_status'])}</td></tr>")

        head = ("<tr><th>Budget line</th><th>Cost centre</th><th class='num'>Budget</th>"
                "<th class='num'>Actual</th><th class='num'>Month end</th>"
                "<th class='num'>Variance</th><th class='num'>%</th><th>Burn</th><th>Status</th></tr>")
        body = "".join(line(r) for r in rows)
        html_ = f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"
        if not is_missing(self.value("headline", 0, "no_budget_usd")):
            html_ += (f'<p class="lead" style="margin-top:10px">Spend on lines without a budget '
                      f'(unlisted features, untagged calls): '
                      f'{self.cell("headline", 0, "no_budget_usd", "usd", tag="span")}.</p>')
        open_rows = [i for i in range(len(b)) if b.iloc[i]["budget_level"] == "total"
                     and pd.Timestamp(b.iloc[i]["month_start"]).date() == p.next_month]
        if open_rows:
            r = open_rows[0]
            html_ += (
                f'<p class="lead" style="margin-top:10px">{p.next_month:%B} so far (as of '
                f'{self.cell("budget", r, "as_of_date", "date", tag="span")}): '
                f'{self.cell("budget", r, "actual_effective_cost_usd", "usd", tag="span")} spent, '
                f'on course for {self.cell("budget", r, "projected_month_end_usd", "usd", tag="span")}'
                f' against {self.cell("budget", r, "monthly_budget_usd", "usd", tag="span")} '
                f'{self.status(b.iloc[r]["budget_status"])}</p>')
        lead = (f"AI spend against each feature's monthly budget for {p.month:%B %Y}; "
                "month end is the projection for an open month, the actual once it is complete.")
        return self._section("budget", "Monthly budget status",
                             f'<p class="lead">{esc(lead)}</p>{html_}')

    def cache(self) -> str:
        if "cache" not in self.data.results:
            return self._section("cache", "Cache efficiency", self.missing("Cache", "cache"))
        p = self.data.period
        table = self.table("cache", [
            ("feature", "Feature", "text"), ("calls", "Calls", "int"),
            ("cache_read_share", "Input tokens from cache", "share"),
            ("cache_hit_rate", "Hit rate (could-hit calls)", "share"),
            ("cache_savings_usd", "Saved", "usd"),
            ("missed_cache_savings_usd", "Still to save", "usd")])
        lead = (f"Prompt caching in the ISO weeks starting in {p.month:%B %Y}: what cache reads "
                "saved at list price, and what the calls that could have hit the cache but did "
                "not would have saved. Sorted by what is still to save.")
        return self._section("cache", "Cache efficiency", f'<p class="lead">{esc(lead)}</p>{table}')

    def chargeback(self) -> str:
        if "chargeback_team" not in self.data.results:
            return self._section("chargeback", "Chargeback",
                                 self.missing("Chargeback", "chargeback_team"))
        p = self.data.period
        team = self.table("chargeback_team", [
            ("cost_centre", "Cost centre", "text"), ("cost_centre_name", "Name", "text"),
            ("team", "Team", "text"), ("effective_cost_usd", "Charge", "usd"),
            ("share_of_month", "Share", "share")])
        seg = self.table("chargeback_segment", [
            ("customer_segment", "Segment", "text"), ("calls", "Calls", "int"),
            ("effective_cost_usd", "Charge", "usd"), ("share_of_month", "Share", "share")])
        t = self.data.frame("chargeback_team")
        chart = self.figure(
            charts.bars(list(t["team"]), pd.to_numeric(t["effective_cost_usd"]).tolist(),
                        "Charge by team"), "chargeback_team", "chargeback_team", "Charge by team")
        lead = (f"Gateway-priced AI cost charged back for {p.month:%B %Y}. "
                "Calls without tags are charged to (unattributed), never dropped.")
        body = (f'<p class="lead">{esc(lead)}</p>{team}<div class="grid2" style="margin-top:14px">'
                f"<div><h3>By customer segment</h3>{seg}</div><div>{chart}</div></div>")
        return self._section("chargeback", "Chargeback by team and segment", body)

    def reconciliation(self) -> str:
        title = "Reconciliation with the invoices"
        if "reconciliation" not in self.data.results:
            return self._section("reconciliation", title, self.missing(
                "Gateway ledger vs vendor invoices", "reconciliation"))
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
                '<td><span class="pill flag">over threshold</span></td>'
                if not is_missing(frame.iloc[r]["flagged"]) and int(frame.iloc[r]["flagged"])
                else "<td></td>")
        total = ""
        if len(self.data.frame("reconciliation_total")):
            t = "reconciliation_total"
            span = 2 if "model" in frame else 1
            pad = len(cols) + len(extra) - span - 4
            total = (f'<tr class="total"><td colspan="{span}">All providers</td>'
                     f'{self.cell(t, 0, "gateway_cost_usd", "usd")}'
                     f'{self.cell(t, 0, "invoice_cost_usd", "usd")}'
                     f'{self.cell(t, 0, "variance_usd", "dusd")}'
                     f'{self.cell(t, 0, "variance_pct", "pct")}' + "<td></td>" * pad + "</tr>")
        lead = (f"{self.data.period.month:%B %Y}: what the vendors invoiced against what the "
                "gateway ledger says the same usage costs at list price, largest variance first; "
                "the gap class says why they differ.")
        body = f'<p class="lead">{esc(lead)}</p>' + self.table("reconciliation", cols, total=total,
                                                                  extra=extra)
        if "chargeback_reconciled" in self.data.results:
            body += ("<h3>One reconciled figure per team</h3><p class=\"lead\">The invoice's "
                     "effective cost allocated to each team by its usage share, beside the "
                     "gateway-priced charge.</p>" + self.table("chargeback_reconciled", [
                         ("cost_centre", "Cost centre", "text"), ("team", "Team", "text"),
                         ("gateway_effective_cost_usd", "Gateway charge", "usd"),
                         ("reconciled_cost_usd", "Invoice (allocated)", "usd"),
                         ("difference_usd", "Difference", "dusd")]))
        return self._section("reconciliation", title, body)

    def forecast(self) -> str:
        title = "Forecast"
        if "forecast_monthly" not in self.data.results:
            return self._section("forecast", title, self.missing("Forecast", "forecast_monthly"))
        p = self.data.period
        fd = self.data.frame("forecast_daily")
        level = None if fd.empty else float(fd["interval_level"].iloc[0])
        chart = self.figure(
            charts.fan_chart(self.data.frame("actual_daily"), fd, level, p.month),
            "fan", "actual_daily,forecast_daily", "Daily spend, actual and forecast interval")
        fm = self.data.frame("forecast_monthly")

        def held(r: int) -> str:
            status = fm["backtest_status"].iloc[r] if "backtest_status" in fm else None
            if status == "backtested" and not is_missing(fm["backtest_coverage"].iloc[r]):
                return self.cell("forecast_monthly", r, "backtest_coverage", "share", text=(
                    f"{fmt(fm['backtest_coverage'].iloc[r], 'share')} of "
                    f"{int(fm['backtest_origins'].iloc[r])} months"))
            if status == "backtested":
                return '<td class="note">not backtested this far ahead</td>'
            return (f'<td class="note">{"too short to backtest" if status == "too_short" else "not backtested"}'
                    "</td>")

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
        mb = self.data.frame("monthly_backtest")
        if mb.empty:
            monthly_note = ('<p class="note">Monthly backtest: too short — no series has three '
                            "month-ahead origins yet, so the bands are rule-of-thumb widths, "
                            "not measured.</p>")
        else:
            monthly_note = (
                '<p class="lead" style="margin-top:8px">Next month\'s spend, backtested at '
                "rolling origins per level (share of actual months inside the stated interval, "
                "median absolute error against a run-rate of the last 28 days, methods "
                "published):</p>" + self.table("monthly_backtest", [
                    ("pooled_level", "Level", "text"), ("n_series", "Series", "int"),
                    ("n_origins", "Months tested", "int"), ("origin_kind", "Origins", "text"),
                    ("monthly_coverage", "Held", "share"), ("monthly_mdape", "Error", "share"),
                    ("run_rate_mdape", "Run-rate error", "share"),
                    ("methods_chosen", "Methods", "text")]))
        ev = self.data.frame("forecast_events")
        events = ('<p class="note">Known changes used: '
                  + esc("; ".join(ev["events_applied"].astype(str)))
                  + ".</p>") if not ev.empty else (
                      '<p class="note">Known changes used: none (planned events and '
                      "price-book changes after the forecast date move it).</p>")
        bt = self.data.frame("backtest")
        honesty = ""
        if not bt.empty:
            honesty = (
                f'<p class="lead" style="margin-top:8px">Daily backtest of the total (the '
                f'chart\'s model, not the monthly figures): the '
                f'{self.cell("backtest", 0, "interval_level", "share", tag="span")} interval '
                f'held {self.cell("backtest", 0, "coverage_calibrated", "share", tag="span")} of '
                f'{self.cell("backtest", 0, "n_points", "int", tag="span")} held-out days after '
                f'calibration; MASE {self.cell("backtest", 0, "mase", "ratio", tag="span")} '
                "(below 1 beats last week's same day).</p>")
        lead = (f"Forecast as of {p.forecast_as_of}: total daily spend with the p10–p90 band. "
                "Each month is published by the method that won its own backtest of monthly "
                "sums, never one that lost to the run-rate; its band is calibrated on those "
                "monthly errors.")
        return self._section("forecast", title,
                             f'<p class="lead">{esc(lead)}</p>{chart}{table}{monthly_note}'
                             f"{events}{honesty}")

    def anomalies(self) -> str:
        title = "Anomalies"
        if "anomalies" not in self.data.results:
            return self._section("anomalies", title, self.missing("Anomalies", "anomalies"))
        p = self.data.period
        frame = self.data.frame("anomalies")
        if frame.empty:
            body = (f'<p class="note">No day since {p.month:%B} 1 was outside its '
                    "interval.</p>")
        else:
            body = self.table("anomalies", [
                ("ds", "Day", "date"), ("series", "Series", "text"),
                ("direction", "", "text"), ("actual", "Actual", "usd"),
                ("expected", "Expected", "usd"), ("upper", "Upper bound", "usd"),
                ("why", "Why", "text")])
        lead = (f"Days since {p.month:%B} 1 whose spend fell outside the "
                f"{self.data.frame('anomalies')['interval_level'].iloc[0]:.0%} interval"
                if not frame.empty else "")
        lead = (lead + ", worst first, with the dimension that explains most of the change."
                if lead else "")
        return self._section("anomalies", title, (f'<p class="lead">{esc(lead)}</p>' if lead
                                                  else "") + body)

    def levers(self) -> str:
        title = "Top savings levers"
        blocks = []
        for lever, result in self.data.levers:
            name = result.query.name
            frame = result.frame
            labels = [c for c in frame.columns if c != "dollars_usd"]
            cols = [(c, c.replace("_", " ").capitalize(), "text") for c in labels]
            cols.append(("dollars_usd", lever.dollars_label, "usd"))
            top = float(frame["dollars_usd"].iloc[0]) if not frame.empty else 0.0
            finding = " · ".join(str(frame.iloc[0][c]) for c in labels) if not frame.empty else ""
            summary = (f'<tr><td><a href="#{esc(name)}">{esc(lever.title)}</a></td>'
                       f"<td>{esc(finding) or '—'}</td>"
                       + (self.cell(name, 0, "dollars_usd", "usd") if not frame.empty
                          else '<td class="num">—</td>')
                       + f"<td>{esc(lever.dollars_label.lower())}</td></tr>")
            block = (f'<h3 id="{esc(name)}">{esc(lever.title)}</h3><p class="lead">'
                     f"{esc(lever.what)}</p>{self.table(name, cols)}")
            blocks.append((top, summary, block))
        blocks.sort(key=lambda b: -b[0])
        summary = ""
        if blocks:
            summary = ("<table><thead><tr><th>Lever</th><th>Largest finding</th>"
                       "<th class='num'>Dollars</th><th></th></tr></thead><tbody>"
                       + "".join(b[1] for b in blocks) + "</tbody></table>")
        absent = [k.split("__", 1)[1] for k in self.data.missing if k.startswith("lever__")]
        note = (f'<p class="note" data-missing="levers">Not available in this warehouse: '
                f'{esc(", ".join(absent))}.</p>' if absent else "")
        lead = ("What each lever is worth in dollars, from the marts that price it, the lever "
                "with the largest single finding first; the details follow.")
        return self._section("levers", title, f'<p class="lead">{lead}</p>{summary}{note}'
                             + "".join(b[2] for b in blocks))

    def appendix(self) -> str:
        items = "".join(
            f"<details><summary><code>{esc(name)}</code></summary><pre>{esc(res.sql.strip())}"
            "</pre></details>" for name, res in self.data.results.items())
        return self._section("queries", "How these figures are computed",
                             '<p class="lead">Every figure above is stamped with the query, row '
                             "and column it comes from; these are the queries.</p>" + items)

    @staticmethod
    def _section(key: str, title: str, body: str) -> str:
        return f'<section id="{esc(key)}"><h2>{esc(title)}</h2>{body}</section>'

    # the whole page -----------------------------------------------------------------------
    def payload(self) -> str:
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
        return json.dumps(out, indent=None).replace("</", "<\\/")

    def render(self, source_url: str) -> str:
        p = self.data.period
        sections = [self.headline(), self.features(), self.budget(), self.cache(),
                    self.chargeback(), self.reconciliation(), self.forecast(), self.anomalies(),
                    self.levers(), self.appendix()]
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>AI spend report — {p.month:%B %Y}</title>
<style>{CSS}</style></head>
<body><main>
<header><h1>AI spend report — {p.month:%B %Y}{
    " (month to date)" if p.month_end > p.data_end else ""}</h1>
<p>Ledger {self.data.data_start:%b %d, %Y} to {p.data_end:%b %d, %Y} · forecast as of
{esc(p.forecast_as_of or "—")} · money in USD, effective cost (after negotiated discounts)
· warehouse {esc(source_url)}</p></header>
{"".join(sections)}
<footer>tokenbook · every figure carries the query it comes from (data-q / data-v) ·
figures are rounded for display only</footer>
</main>
<script type="application/json" id="report-data">{self.payload()}</script>
</body></html>
"""
