"""The ``tokenbook`` command. Each area registers its commands from tokenbook/commands/.

Heavy libraries (dbt, prophet, airflow, great_expectations) are imported inside the
commands, so ``tokenbook --help`` stays fast.
"""

from __future__ import annotations

import typer

from tokenbook.commands import (
    demo,
    export,
    forecast,
    fx,
    ingest,
    pipeline,
    prices,
    report,
    transform,
)

app = typer.Typer(
    name="tokenbook",
    help="AI FinOps pipeline: attribute, price, reconcile and forecast LLM spend.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

app.command("demo-data")(demo.demo_data)
app.add_typer(ingest.app, name="ingest")
app.add_typer(prices.app, name="prices")
app.add_typer(fx.app, name="fx")
app.command("transform")(transform.transform)
app.command("run")(pipeline.run)
app.add_typer(export.app, name="export")
app.command("forecast")(forecast.forecast)
app.command("report")(report.report)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
