"""`tokenbook fx ...`: daily exchange rates for billing lines in other currencies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ingestion.fx import FxFileError, load_fx_rates, load_fx_rates_bigquery
from tokenbook.commands.common import WarehouseOpt, fail, resolve
from tokenbook.exitcodes import INPUT_REFUSED

app = typer.Typer(help="Load daily exchange rates (billing in other currencies).", no_args_is_help=True)


@app.command("load")
def load(
    file: Annotated[
        Path,
        typer.Argument(
            help="The ECB euro reference-rate CSV (eurofxref-hist.csv: Date,USD,JPY,...) or a "
            "date,currency,rate_to_usd CSV.",
            show_default=False,
        ),
    ],
    warehouse: WarehouseOpt = None,
) -> None:
    """Load daily rates into raw.fx_rates (the file's date x currency pairs are replaced).

    Run `tokenbook transform` afterwards: billing lines in other currencies are converted with
    the rate of their day; a line with no rate is reported unconverted (mart_unconverted_billing).
    """
    settings, wh = resolve(warehouse)
    try:
        if wh.is_bigquery:
            table_id = f"{wh.project}.{wh.schema('raw')}.fx_rates"
            result = load_fx_rates_bigquery(wh.bigquery_client(), table_id, file)
        else:
            con = wh.connect()
            try:
                result = load_fx_rates(con, file, wh.table("raw", "fx_rates"))
            finally:
                con.close()
    except FxFileError as exc:
        raise fail(str(exc), INPUT_REFUSED) from exc
    typer.echo(
        f"{result.rows} rates ({result.source}: {', '.join(result.currencies)}) from "
        f"{result.first_date} to {result.last_date} loaded into {wh.table('raw', 'fx_rates')}"
    )
