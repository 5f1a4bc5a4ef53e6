"""The HTML report: every figure equals the mart query it comes from, it opens offline, and its
charts render in headless Chromium (a screenshot is written into pytest's tmp folder).

One small demo warehouse per module: demo -> gateway ingestion -> dbt build -> forecast."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import date, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.settings import load_settings
from core.warehouse import connect_duckdb, parse_warehouse
from tokenbook.cli import app
from tokenbook.report import ReportError, build_report, write_report
from tokenbook.report.data import last_complete_month

END = date(2026, 11, 27)
MONTH = date(2026, 10, 1)  # the last complete month of a ledger ending on Nov 27
REPORT_MARTS = ("fct_llm_calls", "mart_cost_per_outcome", "mart_cache_efficiency",
                "mart_chargeback", "mart_chargeback_customer", "mart_budget_vs_actual",
                "mart_unattributed_spend", "mart_unpriced_calls")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> str:
    from forecasting.config import ForecastConfig
    from forecasting.job import forecast_warehouse
    from ingestion.gateway.pipeline import ingest_gateway
    from tokenbook.dbt import run_dbt
    from tokenbook.demo import generate

    base = tmp_path_factory.mktemp("report")
    url = f"duckdb:///{base / 'wh.duckdb'}"
    settings = load_settings(warehouse=url, config_dir=str(base / "demo" / "config"))
    manifest = generate(base / "demo", days=60, end=END, seed=7, scale=0.02)
    files = sorted(str(p) for p in (base / "demo" / "gateway").iterdir())
    assert len(files) == 60, manifest
    ingest_gateway(files, settings)
    # Only what the report reads (and everything upstream): marts other parts are still adding
    # have their own tests, and the report's optional sections are tested below.
    run_dbt(["build", "--quiet", "--select", *[f"+{m}" for m in REPORT_MARTS]], settings,
            target_path=base / "dbt")
    cfg = ForecastConfig(n_samples=100, workers=1, metrics=("spend",), backtest_cutoffs=2,
                         specs=("additive",), levels=("total", "provider", "feature"))
    forecast_warehouse(parse_warehouse(url), END, cfg)
    return url


@pytest.fixture(scope="module")
def report(warehouse: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "report.html"
    return write_report(load_settings(warehouse=warehouse), out)


def query(url: str, sql: str, params: list | None = None) -> list[tuple]:
    con = connect_duckdb(parse_warehouse(url))
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


# ------------------------------------------------------------------------------ parse the page


class Figures(HTMLParser):
    """Collects every element stamped with data-q (its attributes and its text), the JSON
    payload, and every src/href the page would load."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.figures: list[dict] = []
        self.links: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self._open: list[dict | None] = []
        self._json: list[str] | None = None
        self.payload: dict = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        for key in ("src", "href"):
            if key in a:
                self.links.append(a[key])
        if tag == "script" and a.get("id") == "report-data":
            self._json = []
        if "data-c" in a:
            fig = {**a, "text": ""}
            self.figures.append(fig)
            self._open.append(fig)
        elif tag not in ("img", "br", "meta", "circle", "polyline"):
            self._open.append(None)

    def handle_endtag(self, tag):
        if tag == "script" and self._json is not None:
            self.payload = json.loads("".join(self._json))
            self._json = None
        if self._open and tag not in ("img", "br", "meta", "circle", "polyline"):
            self._open.pop()

    def handle_data(self, data):
        if self._json is not None:
            self._json.append(data)
        for fig in self._open:
            if fig is not None:
                fig["text"] += data


def parse(html: str) -> Figures:
    p = Figures()
    p.feed(html)
    return p


def same(text: str, fresh) -> bool:
    """The stamped raw value (text) against a freshly queried value."""
    if fresh is None:
        return text == ""
    if isinstance(fresh, bool):
        return text == ("true" if fresh else "false")
    if isinstance(fresh, Decimal):
        return Decimal(text) == fresh
    if isinstance(fresh, float):
        return fresh != fresh and text == "" or float(text) == fresh
    if isinstance(fresh, int):
        return int(text) == fresh
    if isinstance(fresh, datetime):
        return text == fresh.isoformat() or text == fresh.date().isoformat()
    if isinstance(fresh, date):
        return text == fresh.isoformat()
    return text == str(fresh)


_NUM = re.compile(r"[-+]?\$?([\d,]+)(?:\.(\d+))?")


def shown_matches(text: str, value: str, kind: str) -> bool:
    """The displayed text is the stamped value rounded for display."""
    text = text.strip()
    if value == "":
        return text == "—"
    if kind == "text":
        return text == value
    if kind == "date":
        return datetime.strptime(text, "%b %d, %Y").date().isoformat() == value[:10]
    if kind == "month":
        return datetime.strptime(text, "%b %Y").date().isoformat() == value[:10]
    m = _NUM.search(text)
    assert m, f"no number in {text!r}"
    decimals = len(m.group(2) or "")
    number = float(m.group(0).replace("$", "").replace(",", ""))
    scale = 100 if kind in ("pct", "share") else 1
    tolerance = 0.5 * 10 ** -decimals / scale + 1e-12
    return abs(number / scale - float(value)) <= tolerance


def assert_every_figure_matches(html: str, url: str) -> Figures:
    page = parse(html)
    queries = page.payload["queries"]
    assert page.figures, "no stamped figures in the report"
    # 1. each query's rows in the page equal a fresh run of its SQL on the marts
    for name, q in queries.items():
        con = connect_duckdb(parse_warehouse(url))
        try:
            cur = con.execute(q["sql"])
            cols = [d[0] for d in cur.description]
            fresh = cur.fetchall()
        finally:
            con.close()
        assert cols == q["columns"], name
        assert len(fresh) == len(q["rows"]), name
        for r, (row, shown) in enumerate(zip(fresh, q["rows"], strict=True)):
            for c, (v, t) in enumerate(zip(row, shown, strict=True)):
                assert same(t, v), f"{name} row {r} {cols[c]}: page {t!r} vs mart {v!r}"
    # 2. every stamped figure carries its query's value and shows it rounded
    for fig in page.figures:
        q = queries[fig["data-q"]]
        r = int(fig["data-r"])
        value = q["rows"][r][q["columns"].index(fig["data-c"])] if r < len(q["rows"]) else ""
        assert fig["data-v"] == value, fig
        assert shown_matches(fig["text"], value, fig["data-kind"]), fig
    return page


# ------------------------------------------------------------------------------------ the tests


def test_every_figure_equals_a_fresh_query_of_the_marts(report: Path, warehouse: str) -> None:
    page = assert_every_figure_matches(report.read_text(), warehouse)
    kinds = {f["data-q"] for f in page.figures}
    for q in ("headline", "features_month", "features_weekly", "budget", "cache",
              "chargeback_team", "chargeback_segment", "forecast_monthly", "backtest"):
        assert q in kinds, f"no figure from {q}"
    assert page.payload["month"] == MONTH.isoformat()
    print(f"{len(page.figures)} figures checked against {len(page.payload['queries'])} queries")


def test_headline_figures_agree_with_the_ledger(report: Path, warehouse: str) -> None:
    """Checked with SQL written here, independently of the report's own queries."""
    page = parse(report.read_text())
    fig = {(f["data-q"], f["data-c"]): f for f in page.figures if f["data-r"] == "0"}
    (spend, prev, unattributed), = query(warehouse, """
        select sum(effective_cost_usd) filter (where call_month = ?),
               sum(effective_cost_usd) filter (where call_month = ?),
               sum(effective_cost_usd) filter (where call_month = ? and
                   (feature = '(unattributed)' or customer_segment = '(unattributed)'))
        from marts.fct_llm_calls""", [MONTH, date(2026, 9, 1), MONTH])
    assert spend > 0 and prev > 0
    assert Decimal(fig[("headline", "spend_usd")]["data-v"]) == spend
    assert Decimal(fig[("headline", "previous_spend_usd")]["data-v"]) == prev
    assert float(fig[("headline", "spend_change_pct")]["data-v"]) == pytest.approx(
        float((spend - prev) / prev), rel=1e-12)
    assert float(fig[("headline", "unattributed_share")]["data-v"]) == pytest.approx(
        float(unattributed / spend), rel=1e-12)
    assert fig[("headline", "spend_usd")]["text"] == f"${float(spend):,.2f}"
    # next month's forecast: the row for November of the latest forecast run
    (p10, p50, p90, level), = query(warehouse, """
        select p10, p50, p90, interval_level from marts.forecast_monthly
        where as_of = ? and series_level = 'total' and metric = 'spend'
          and month = date '2026-11-01'""", [END])
    forecast = [f for f in page.figures if f["data-q"] == "forecast_monthly"
                and f["data-c"] in ("p10", "p50", "p90") and "big" in f.get("class", "")]
    assert [Decimal(f["data-v"]) for f in forecast] == [p50]
    card = report.read_text().split("Forecast, Nov 2026 (p50)")[1].split("</div></div>")[0]
    assert f'data-v="{p10}"' in card and f'data-v="{p90}"' in card and f'data-v="{level!r}"' in card
    # the features table is the month's spend by feature, and chargeback sums to the month
    by_feature = dict(query(warehouse, """
        select feature, sum(effective_cost_usd) from marts.fct_llm_calls
        where call_month = ? group by feature""", [MONTH]))
    shown = {page.payload["queries"]["features_month"]["rows"][int(f["data-r"])][0]:
             Decimal(f["data-v"]) for f in page.figures
             if f["data-q"] == "features_month" and f["data-c"] == "effective_cost_usd"}
    assert shown == by_feature
    team_total = sum(Decimal(f["data-v"]) for f in page.figures
                     if f["data-q"] == "chargeback_team" and f["data-c"] == "effective_cost_usd")
    assert team_total == spend


def test_report_opens_offline_with_charts_inline(report: Path) -> None:
    html = report.read_text()
    page = parse(html)
    assert all(link.startswith(("data:", "#")) for link in page.links), page.links
    assert not [a for t, a in page.tags if t == "link" or (t == "script" and "src" in a)]
    assert "@import" not in html and "url(http" not in html
    charts = {a["data-chart"] for t, a in page.tags if t == "figure"}
    assert {"feature_trend", "fan", "chargeback_team"} <= charts
    assert html.count("data:image/svg+xml;base64,") >= 3
    assert html.count('class="spark"') >= 5  # a weekly sparkline per feature


def test_month_defaults_to_the_last_complete_month_and_can_be_chosen(
    warehouse: str, tmp_path: Path
) -> None:
    assert last_complete_month(date(2026, 11, 27)) == date(2026, 10, 1)
    assert last_complete_month(date(2026, 11, 30)) == date(2026, 11, 1)
    settings = load_settings(warehouse=warehouse)
    html, data = build_report(settings, month=date(2026, 11, 1))
    assert data.period.month == date(2026, 11, 1)
    assert "AI spend report — November 2026 (month to date)" in html
    assert "AI spend, November 2026 (to Nov 27)" in html
    assert_every_figure_matches(html, warehouse)
    # the nightly DAG passes a folder (a path without a suffix) and the run's month
    path = write_report(settings, tmp_path / "reports" / "", month=date(2026, 11, 1))
    assert path == tmp_path / "reports" / "tokenbook-report-2026-11.html" and path.is_file()
    with pytest.raises(ReportError, match="pass --month between 2026-09 and 2026-11"):
        build_report(settings, month=date(2025, 1, 1))


def test_missing_sections_say_so_and_appear_once_their_marts_exist(
    warehouse: str, tmp_path: Path
) -> None:
    copy = tmp_path / "wh.duckdb"
    query(warehouse, "checkpoint")  # everything into the file before copying it
    shutil.copy(parse_warehouse(warehouse).path, copy)
    url = f"duckdb:///{copy}"
    html, data = build_report(load_settings(warehouse=url))
    assert "mart_reconciliation is not available in this warehouse" in html
    assert 'data-missing="levers"' in html and "mart_retry_waste" in html
    con = connect_duckdb(parse_warehouse(url))
    try:
        con.execute("""
            create table marts.mart_reconciliation as
            select * from (values
              ('month', date '2026-10-01', 'openai', 'gpt-4o', 100.000000000::decimal(38,9),
               103.500000000::decimal(38,9), 3.500000000::decimal(38,9), 0.035,
               'unlogged_usage', 'billed usage of API keys the gateway never logged', true),
              ('month', date '2026-10-01', 'anthropic', 'claude-sonnet-4-5',
               50.000000000::decimal(38,9), 49.750000000::decimal(38,9),
               -0.250000000::decimal(38,9), -0.005, 'timing', 'it cancels', false),
              ('day', date '2026-10-03', 'openai', 'gpt-4o', 9.0::decimal(38,9),
               99.0::decimal(38,9), 90.0::decimal(38,9), 10.0, 'timing', 'x', true),
              ('month', date '2026-11-01', 'openai', 'gpt-4o', 9.0::decimal(38,9),
               99.0::decimal(38,9), 90.0::decimal(38,9), 10.0, 'timing', 'x', true)
            ) t(grain, period_start, provider, model, gateway_list_cost_usd,
                invoice_billed_cost_usd, cost_variance_usd, cost_variance_pct, gap_class,
                gap_detail, is_flagged)""")
        con.execute("""
            create table marts.mart_chargeback_reconciled as
            select * from (values
              (date '2026-10-01', 'FIN-77', 'ops-west', 'enterprise',
               10.0::decimal(38,9), 10.4::decimal(38,9)),
              (date '2026-10-01', 'FIN-77', 'ops-west', 'smb',
               5.0::decimal(38,9), 5.1::decimal(38,9)),
              (date '2026-09-01', 'FIN-77', 'ops-west', 'smb',
               500.0::decimal(38,9), 5.1::decimal(38,9))
            ) t(month_start, cost_centre, team, customer_segment, gateway_effective_cost_usd,
                reconciled_cost_usd)""")
        con.execute("""
            create table marts.mart_retry_waste as
            select * from (values
              ('invoice_triage', 'gpt-4o', date '2026-10-05', 12.5::decimal(38,9)),
              ('invoice_triage', 'gpt-4o', date '2026-10-12', 7.5::decimal(38,9)),
              ('lead_scoring', 'o4-mini', date '2026-10-12', 4.0::decimal(38,9)),
              ('lead_scoring', 'o4-mini', date '2026-11-02', 400.0::decimal(38,9))
            ) t(feature, model, week_start, retry_waste_usd)""")
    finally:
        con.close()
    html, data = build_report(load_settings(warehouse=url))
    assert "mart_reconciliation is not available" not in html
    page = assert_every_figure_matches(html, url)
    recon = data.frame("reconciliation")
    assert list(recon["provider"]) == ["openai", "anthropic"]  # October's month rows, worst first
    assert [Decimal(v) for v in recon["variance_usd"]] == [Decimal("3.5"), Decimal("-0.25")]
    assert "over threshold" in html and "unlogged_usage" in html
    total = data.frame("reconciliation_total").iloc[0]
    assert (total["invoice_cost_usd"], total["variance_usd"], total["flagged_lines"]) == (
        Decimal("153.25"), Decimal("3.25"), 1)
    assert "Invoice vs ledger, October" in html
    per_team = data.frame("chargeback_reconciled")
    assert [(r.team, r.reconciled_cost_usd, r.difference_usd) for r in per_team.itertuples()] == [
        ("ops-west", Decimal("15.5"), Decimal("0.5"))]
    waste = data.frame("lever__mart_retry_waste")
    assert list(zip(waste["feature"], waste["dollars_usd"], strict=True)) == [
        ("invoice_triage", Decimal("20")), ("lead_scoring", Decimal("4"))]  # October weeks only
    assert any(f["data-q"] == "lever__mart_retry_waste" for f in page.figures)
    assert "Cut retry waste" in html
    # a warehouse that has never been forecast still gets its report, saying what is missing
    for table in ("forecast_daily", "forecast_monthly", "forecast_backtest", "anomaly_flags"):
        query(url, f"drop table marts.{table}")
    html, data = build_report(load_settings(warehouse=url))
    assert_every_figure_matches(html, url)
    assert 'data-missing="forecast_monthly"' in html and 'data-missing="anomalies"' in html
    assert "forecast_monthly not in this warehouse" in html


def test_names_from_the_data_are_escaped_not_run(warehouse: str, tmp_path: Path) -> None:
    """A feature or team named like markup (tags are free text from the gateway) shows as text:
    the page gains no element, and the JSON payload cannot be closed early."""
    copy = tmp_path / "wh.duckdb"
    query(warehouse, "checkpoint")
    shutil.copy(parse_warehouse(warehouse).path, copy)
    url = f"duckdb:///{copy}"
    evil_feature = '<script>alert("feature")</script>'
    evil_team = "</script><img src=x onerror=alert(1)>"
    (feature,) = query(url, "select feature from marts.mart_cost_per_outcome "
                            "where period = 'month' and period_start = ? "
                            "order by effective_cost_usd desc limit 1", [MONTH])[0]
    (team,) = query(url, "select team from marts.mart_chargeback where month_start = ? "
                         "order by effective_cost_usd desc limit 1", [MONTH])[0]
    for table in ("mart_cost_per_outcome", "mart_cache_efficiency"):
        query(url, f"update marts.{table} set feature = ? where feature = ?",
              [evil_feature, feature])
    query(url, "update marts.mart_chargeback set team = ? where team = ?", [evil_team, team])

    html, data = build_report(load_settings(warehouse=url), month=MONTH)
    assert evil_feature not in html and evil_team not in html
    assert "&lt;script&gt;alert(&#34;feature&#34;)&lt;/script&gt;" in html
    page = assert_every_figure_matches(html, url)
    # one script element (the JSON data) and no image outside the charts
    assert [a.get("id") for tag, a in page.tags if tag == "script"] == ["report-data"]
    assert all(a["src"].startswith("data:image/svg+xml;base64,")
               for tag, a in page.tags if tag == "img")
    # the reader sees the names as written, in the tables and in the data
    def shown(q: str, c: str) -> set[str]:
        return {f["text"] for f in page.figures if (f["data-q"], f["data-c"]) == (q, c)}

    assert evil_feature in shown("features_month", "feature")
    assert evil_team in shown("chargeback_team", "team")
    rows = page.payload["queries"]["features_month"]["rows"]
    assert rows[0][0] == evil_feature


def test_cli_writes_the_report_and_refuses_a_bad_month(warehouse: str, tmp_path: Path) -> None:
    out = tmp_path / "r" / "october.html"
    result = CliRunner().invoke(app, ["report", "--month", "2026-10", "--out", str(out),
                                      "--warehouse", warehouse])
    assert result.exit_code == 0, result.output
    assert f"report written: {out}" in result.output
    assert "AI spend report — October 2026" in out.read_text()
    folder = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "reports"),
                                      "--warehouse", warehouse])
    assert folder.exit_code == 0, folder.output
    assert (tmp_path / "reports" / "tokenbook-report-2026-10.html").exists()
    bad = CliRunner().invoke(app, ["report", "--month", "2026-13", "--warehouse", warehouse])
    assert bad.exit_code != 0 and "YYYY-MM" in bad.output
    empty = CliRunner().invoke(app, ["report", "--warehouse",
                                     f"duckdb:///{tmp_path / 'none.duckdb'}"])
    assert empty.exit_code != 0 and "no warehouse at" in empty.output


_MEASURE = """<script>
window.addEventListener('load', () => {
  const out = [];
  document.querySelectorAll('figure[data-chart] img, svg.spark').forEach(e => {
    const r = e.getBoundingClientRect();
    const fig = e.closest('figure');
    out.push({chart: fig ? fig.dataset.chart : 'spark', width: r.width, height: r.height,
              natural: e.naturalWidth === undefined ? -1 : e.naturalWidth});
  });
  const pre = document.createElement('pre');
  pre.id = 'rendered-sizes';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script></body>"""


def test_charts_render_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not on PATH (Debian: apt-get install chromium): "
                    "the report's charts were not checked in a browser")
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
             "--virtual-time-budget=5000", "--window-size=1200,4800"]
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace("</body>", _MEASURE, 1))
    dom = subprocess.run([*flags, "--dump-dom", probe.as_uri()], capture_output=True,
                         text=True, timeout=90, check=True).stdout
    sizes = json.loads(re.search(r'<pre id="rendered-sizes">(.*?)</pre>', dom, re.S).group(1))
    charts = {s["chart"]: s for s in sizes if s["chart"] != "spark"}
    assert {"feature_trend", "fan", "chargeback_team"} <= set(charts), sizes
    for s in sizes:
        assert s["width"] > 50 and s["height"] > 15, s
        assert s["natural"] != 0, f"chart image did not decode: {s}"
    assert charts["fan"]["width"] > 600  # the fan chart spans the section
    shot = tmp_path / "report.png"
    subprocess.run([*flags, f"--screenshot={shot}", report.as_uri()], capture_output=True,
                   timeout=90, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1200, 4800)
        assert len(im.convert("RGB").resize((200, 800)).getcolors(1 << 20)) > 100  # not blank
    print(f"report screenshot: {shot}")


class BigQueryStandIn:
    """Stands in for ``google.cloud.bigquery.Client`` (BigQuery cannot be reached here): it
    records the BigQuery SQL the report sends, transpiles it with sqlglot and answers it from
    the DuckDB warehouse, as rows with ``keys()`` / ``values()`` like BigQuery's Row."""

    class Row(dict):
        pass

    def __init__(self, url: str) -> None:
        self.url = url
        self.sent: list[str] = []

    def query(self, sql: str):
        import sqlglot

        self.sent.append(sql)
        if "INFORMATION_SCHEMA.COLUMNS" in sql:
            assert "`orbit.tb_marts`.INFORMATION_SCHEMA.COLUMNS" in sql, sql
            duck = ("select table_name, lower(column_name) as column_name "
                    "from information_schema.columns where table_schema = 'marts'")
        else:
            assert "marts." not in re.sub(r"`orbit\.tb_marts\.\w+`", "", sql), sql
            duck = sqlglot.transpile(re.sub(r"`orbit\.tb_marts\.(\w+)`", r"marts.\1", sql),
                                     read="bigquery", write="duckdb")[0]
        con = connect_duckdb(parse_warehouse(self.url))
        try:
            cur = con.execute(duck)
            cols = [d[0] for d in cur.description]
            rows = [self.Row(zip(cols, r, strict=True)) for r in cur.fetchall()]
        finally:
            con.close()

        class Job:
            def result(self):
                return rows

        return Job()


def test_bigquery_path_gives_the_same_figures(report: Path, warehouse: str) -> None:
    client = BigQueryStandIn(warehouse)
    html, data = build_report(load_settings(warehouse="bigquery://orbit/tb"), client=client)
    assert len(client.sent) > 10
    assert all("`orbit.tb_marts." in sql or "INFORMATION_SCHEMA" in sql for sql in client.sent)
    on_bigquery = parse(html).payload["queries"]
    on_duckdb = parse(report.read_text()).payload["queries"]
    assert set(on_bigquery) == set(on_duckdb)
    for name, q in on_duckdb.items():
        assert on_bigquery[name]["rows"] == q["rows"], name
