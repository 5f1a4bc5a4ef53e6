"""The ``tokenbook`` command. Each area registers its commands from tokenbook/commands/.

Heavy libraries (dbt, prophet, airflow, great_expectations) are imported inside the
commands, so ``tokenbook --help`` stays fast.

Every failure ends in a sentence, in ONE place (:class:`TokenbookGroup`): an error a user can
cause (a refused file, a locked warehouse, missing BigQuery credentials) prints what to do and
exits with its code from ``tokenbook/exitcodes.py``; anything unexpected prints one line and
the path of a log file holding the traceback, and exits ``INTERNAL`` (70). ``--debug`` (or
``TOKENBOOK_DEBUG=1``) prints the traceback instead.
"""

from __future__ import annotations

import os
import sys
import traceback
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from core.interrupts import forward_sigint
from tokenbook import exitcodes
from tokenbook.commands import (
    check,
    demo,
    export,
    forecast,
    fx,
    ingest,
    metrics,
    orgconfig,
    pipeline,
    prices,
    report,
    transform,
)
from tokenbook.commands.common import color
from tokenbook.errors import explain, is_interrupt


def log_dir() -> Path:
    """Where error logs go: ``$TOKENBOOK_LOG_DIR``, else ``logs/`` under the output folder
    (``$TOKENBOOK_OUT_DIR``, default ``out``)."""
    explicit = os.environ.get("TOKENBOOK_LOG_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("TOKENBOOK_OUT_DIR") or "out") / "logs"


def write_error_log(exc: BaseException, argv: list[str]) -> Path:
    folder = log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"error-{stamp}-{os.getpid()}.log"
    body = "".join(traceback.format_exception(exc))
    path.write_text(f"tokenbook {_version()}\ncommand: tokenbook {' '.join(argv)}\n\n{body}")
    return path.resolve()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tokenbook")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


@contextmanager
def plain_output():
    """Output that reads well in a pipe or a log file: no hard wrap at 80 columns (rich
    takes the width from COLUMNS when the output is not a terminal), no colour when NO_COLOR
    is set or the output is not a terminal (rich and click honour both), dbt without colour.
    The environment is restored afterwards (the CLI may run inside a longer process)."""
    import typer.rich_utils

    saved = {k: os.environ.get(k) for k in ("COLUMNS", "DBT_USE_COLORS")}
    saved_width = typer.rich_utils.MAX_WIDTH
    try:
        _plain_output()
        yield
    finally:
        typer.rich_utils.MAX_WIDTH = saved_width
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _plain_output() -> None:
    if not sys.stdout.isatty() and "COLUMNS" not in os.environ:
        os.environ["COLUMNS"] = "1000"
        # typer's own help and usage-error panels stay at a readable width
        import typer.rich_utils

        if typer.rich_utils.MAX_WIDTH is None:
            typer.rich_utils.MAX_WIDTH = 100
    if os.environ.get("NO_COLOR") or not sys.stdout.isatty():
        os.environ.setdefault("DBT_USE_COLORS", "false")


class TokenbookGroup(TyperGroup):
    """The root group: runs every command inside the one error handler (see the module
    docstring). It is what ``typer.testing.CliRunner`` invokes too."""

    def invoke(self, ctx: typer.Context):
        with plain_output():
            return self._invoke(ctx)

    def _invoke(self, ctx: typer.Context):
        try:
            # Ctrl-C also interrupts the DuckDB statement running (core/interrupts.py)
            with forward_sigint():
                return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.exceptions.TyperException):
            raise
        except KeyboardInterrupt:
            raise _interrupted() from None
        except Exception as exc:
            if is_interrupt(exc):  # Ctrl-C while DuckDB ran a statement
                raise _interrupted() from None
            debug = bool(ctx.params.get("debug")) or os.environ.get("TOKENBOOK_DEBUG") == "1"
            if debug:
                traceback.print_exception(exc, file=sys.stderr)
            known = explain(exc)
            if known is not None:
                code, message = known
                typer.secho(f"error: {message}", fg=typer.colors.RED, err=True, color=color())
                raise typer.Exit(code) from None
            if debug:
                raise typer.Exit(exitcodes.INTERNAL) from None
            log = write_error_log(exc, sys.argv[1:])
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            typer.secho(
                f"error: unexpected {type(exc).__name__}: {first} (a bug in tokenbook or an "
                f"unforeseen input; details in {log}, rerun with --debug to see them here)",
                fg=typer.colors.RED,
                err=True,
                color=color(),
            )
            raise typer.Exit(exitcodes.INTERNAL) from None


def _interrupted() -> typer.Exit:
    typer.echo("interrupted: nothing more was written (a load in progress was rolled back; "
               "run the command again to finish)", err=True)
    return typer.Exit(exitcodes.INTERRUPTED)


app = typer.Typer(
    name="tokenbook",
    cls=TokenbookGroup,
    help="AI FinOps pipeline: attribute, price, reconcile and forecast LLM spend.\n\n"
    "Examples: tokenbook run --demo  |  tokenbook ingest gateway logs/ && tokenbook transform",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"tokenbook {_version()}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_print_version,
                     is_eager=True),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option("--debug", help="On an unexpected error, print the traceback (else it "
                     "goes to a log file under out/logs). Env: TOKENBOOK_DEBUG=1."),
    ] = False,
) -> None:
    """AI FinOps pipeline: attribute, price, reconcile and forecast LLM spend."""


app.command("demo-data")(demo.demo_data)
app.command("init")(orgconfig.init)
app.add_typer(orgconfig.app, name="config")
app.add_typer(ingest.app, name="ingest")
app.command("check")(check.check)
app.add_typer(prices.app, name="prices")
app.add_typer(fx.app, name="fx")
app.command("transform")(transform.transform)
app.command("run")(pipeline.run)
app.add_typer(export.app, name="export")
app.command("forecast")(forecast.forecast)
app.command("report")(report.report)
app.add_typer(metrics.app, name="metrics")


# One or two examples at the end of each command's --help (the epilog).
EXAMPLES: dict[str, str] = {
    "demo-data": "tokenbook demo-data --days 60 --out demo_data",
    "transform": "tokenbook transform  |  tokenbook transform --select marts",
    "run": "tokenbook run --demo  |  tokenbook run --date 2026-11-10 --data-dir exports/ "
    "--report out/nightly.html",
    "forecast": "tokenbook forecast  |  tokenbook forecast --warehouse "
    "bigquery://my-gcp-project/tokenbook",
    "report": "tokenbook report --month 2026-11 --out out/report.html",
    "ingest gateway": "tokenbook ingest gateway logs/gateway-2026-11-10.jsonl.gz --date "
    "2026-11-10  |  tokenbook ingest gateway logs/  (a folder: one load per file date)",
    "ingest billing": "tokenbook ingest billing --vendor openai exports/openai/ --date "
    "2026-11-10  |  tokenbook ingest billing --vendor aws cur-2026-11.csv.gz --month 2026-11",
    "ingest evals": "tokenbook ingest evals evals/2026-11-10.csv --date 2026-11-10",
    "prices load": "tokenbook prices load  |  tokenbook prices load --file my_prices.json",
    "prices show": "tokenbook prices show gpt-4o",
    "export chargeback": "tokenbook export chargeback --month 2026-11 --out out/chargeback.csv",
    "export focus": "tokenbook export focus --month 2026-11 --out out/focus.parquet",
    "metrics query": "tokenbook metrics query --metrics cost_per_outcome --group-by "
    "feature,metric_time__month",
    "metrics list": "tokenbook metrics list",
    "init": "tokenbook init config  |  tokenbook init /srv/finops/config",
    "config check": "tokenbook config check --config-dir config",
    "fx load": "tokenbook fx load eurofxref-hist.csv  |  tokenbook fx load rates.csv",
    "check": "tokenbook check --date 2026-11-10  |  tokenbook check --from 2026-11-01 --to "
    "2026-11-30",
    "metrics validate": "tokenbook metrics validate  |  tokenbook metrics validate --warehouse "
    "bigquery://my-gcp-project/tokenbook",
}


def _add_examples(typer_app: typer.Typer, prefix: str = "") -> None:
    for info in typer_app.registered_commands:
        example = EXAMPLES.get(f"{prefix}{info.name}")
        if example and not info.epilog:
            info.epilog = f"Example: {example}"
    for group in typer_app.registered_groups:
        _add_examples(group.typer_instance, f"{prefix}{group.name} ")


_add_examples(app)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
