"""The HTML report a CFO reads: one self-contained file, every figure from a mart query.

``write_report(settings, out_path, month=None)`` is the entry point (the main job and
``tokenbook report`` call it). The code runs query -> frame -> rendered figure:
``queries.py`` holds the core SQL and ``optional.py`` the sections built from the columns a
mart has (both as ``sql.py`` queries over a period), ``data.py`` runs them, ``render.py`` and ``charts.py`` draw.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from core.settings import Settings
from core.warehouse import Warehouse
from tokenbook.report.data import ReportData, ReportError, collect, open_source
from tokenbook.report.render import Page

__all__ = ["ReportData", "ReportError", "build_report", "write_report"]


def build_report(settings: Settings, month: date | None = None, con=None,
                 client=None) -> tuple[str, ReportData]:
    """The report's HTML and the data behind it. ``month`` defaults to the last complete month
    in the ledger (never the clock). ``con``: an open DuckDB connection to reuse;
    ``client``: a BigQuery client (tests)."""
    warehouse = Warehouse.from_settings(settings)
    source = open_source(warehouse, con=con, client=client)
    try:
        data = collect(source, month)
    finally:
        source.close()
    return Page(data).render(warehouse.url), data


def write_report(settings: Settings, out_path: str | Path, month: date | None = None) -> Path:
    """Write the report to ``out_path`` and return the file's path. ``out_path`` is the file
    (``.html``), or a folder (an existing one, or any path without a suffix) that gets
    ``tokenbook-report-YYYY-MM.html``."""
    html, data = build_report(settings, month)
    out = Path(out_path)
    if out.is_dir() or str(out_path).endswith("/") or not out.suffix:
        out = out / f"tokenbook-report-{data.period.month:%Y-%m}.html"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write the report to {out}: {exc.strerror or exc}; "
                          "choose another --out") from exc
    return out
