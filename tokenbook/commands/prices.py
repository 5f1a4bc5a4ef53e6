"""`tokenbook prices ...`: the effective-dated price book (owner: pricing)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from tokenbook.commands.common import WarehouseOpt, fail, resolve
from tokenbook.pricing.litellm import PriceMapError
from tokenbook.pricing.versions import PriceBookError, load_prices

app = typer.Typer(help="Manage the effective-dated price book.", no_args_is_help=True)


@app.command("load")
def load(
    file: Annotated[
        Path,
        typer.Argument(help="A LiteLLM model_prices_and_context_window.json (or .json.gz)."),
    ],
    valid_from: Annotated[
        str | None,
        typer.Option(
            "--effective-from",
            "--valid-from",
            help="Date the map's prices took effect (YYYY-MM-DD); an older snapshot of the "
            "map with its own date adds history before newer versions. Default: today (UTC).",
            show_default=False,
        ),
    ] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Add a price map as the prices in force from a date (changed prices only; versions
    never overwrite each other).

    Run `tokenbook transform` afterwards: it reprices exactly the calls the new versions touch.
    """
    _, wh = resolve(warehouse)
    try:
        start = date.fromisoformat(valid_from) if valid_from else datetime.utcnow().date()
    except ValueError as exc:
        raise fail(f"--effective-from {valid_from!r} is not a date: write YYYY-MM-DD") from exc
    try:
        result = load_prices(file, wh, start)
    except (PriceMapError, PriceBookError) as exc:
        raise fail(str(exc)) from exc
    typer.echo(
        f"price book version {result.version_id or '-'} from {result.valid_from}: "
        f"{result.changed_models} changed, {result.new_models} new, "
        f"{result.unchanged_models} unchanged, {result.missing_models} not in this map (kept); "
        f"{result.appended} rows appended to {wh.table('raw', 'price_book_versions')} in "
        f"{wh.location}"
    )


@app.command("show")
def show(
    model: Annotated[str, typer.Argument(help="Catalogue model key, e.g. gpt-4o.")],
    provider: Annotated[
        str | None, typer.Option("--provider", help="Canonical provider, e.g. openai.")
    ] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Print the price history of a model (USD per 1M tokens) from the built price book."""
    import duckdb  # imported when the command runs, not at CLI start

    _, wh = resolve(warehouse)
    if wh.is_bigquery:
        raise fail("prices show reads the DuckDB warehouse; on BigQuery query int_price_book")
    if not wh.path or not wh.path.exists():
        raise fail(f"no warehouse at {wh.location}: run `tokenbook transform` first")
    con = wh.connect(read_only=True)
    try:
        sql = (
            "select provider, model, valid_from, valid_to, input_per_mtok, cache_read_per_mtok, "
            "output_per_mtok, version_id from staging.int_price_book where model = ?"
        )
        params: list[object] = [model.lower()]
        if provider:
            sql += " and provider = ?"
            params.append(provider.lower())
        rows = con.execute(sql + " order by provider, valid_from", params).fetchall()
    except duckdb.CatalogException as exc:  # the book is not built; anything else is not that
        raise fail(f"the price book (staging.int_price_book) is not built in {wh.location}: "
                   "run `tokenbook transform` first") from exc
    finally:
        con.close()
    if not rows:
        raise fail(f"no price-book entry for model {model!r}")
    for r in rows:
        typer.echo(
            f"{r[0]}/{r[1]}  {r[2]} -> {r[3] or 'now'}  in {r[4]}  cache-read {r[5]}  "
            f"out {r[6]}  ({r[7]})"
        )
