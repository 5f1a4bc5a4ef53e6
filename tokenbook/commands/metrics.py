"""`tokenbook metrics ...`: the FinOps metrics of dbt's semantic layer (owner: semantic).

`query` and `list` hand their arguments to MetricFlow's `mf` against the configured
warehouse (the semantic manifest is parsed for that warehouse first); `validate` checks the
semantic manifest offline, for DuckDB and for the BigQuery target.
"""

from __future__ import annotations

import tempfile

import typer

from tokenbook.commands.common import WarehouseOpt, fail, resolve
from tokenbook.dbt import DbtError
from tokenbook.exitcodes import CONFIG_INVALID, USAGE
from tokenbook.semantic import (
    metric_names,
    parse_semantic_manifest,
    run_mf,
    validate_semantic_manifest,
)

app = typer.Typer(
    help="Query the FinOps metrics (dbt semantic layer, MetricFlow `mf`).", no_args_is_help=True
)
_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def _mf(args: list[str], warehouse: str | None) -> None:
    settings, wh = resolve(warehouse)
    if not wh.is_bigquery and not wh.path.exists():
        raise fail(f"no warehouse at {wh.path}: build it first (`tokenbook run --demo` or "
                   "`tokenbook transform`), or pass --warehouse")  # fmt: skip
    try:
        code = run_mf(args, settings)
    except DbtError as exc:
        raise fail(f"the semantic layer did not parse: {exc}", CONFIG_INVALID) from exc
    if code:
        raise fail(f"mf {args[0]} refused the request (message above)", USAGE)


@app.command("query", context_settings=_PASS_THROUGH)
def query(ctx: typer.Context, warehouse: WarehouseOpt = None) -> None:
    """Run `mf query ARGS` on the warehouse, e.g. `tokenbook metrics query --metrics
    cost_per_outcome --group-by feature,metric_time__month` (`mf query --help` lists the
    options: --where, --order, --limit, --start-time, --end-time, --csv FILE, --explain)."""
    _mf(["query", *ctx.args], warehouse)


@app.command("list", context_settings=_PASS_THROUGH)
def list_(ctx: typer.Context, warehouse: WarehouseOpt = None) -> None:
    """Run `mf list ARGS`: `metrics` (default), `dimensions --metrics M`, `dimension-values`."""
    _mf(["list", *(ctx.args or ["metrics"])], warehouse)


@app.command("validate")
def validate(warehouse: WarehouseOpt = None) -> None:
    """Parse the dbt project for the warehouse and check its semantic manifest (what
    `mf validate-configs --skip-dw` checks); needs no connection, BigQuery included."""
    settings, _ = resolve(warehouse)
    with tempfile.TemporaryDirectory(prefix="tokenbook-semantic-") as tmp:
        try:
            path = parse_semantic_manifest(settings, target_path=tmp)
        except DbtError as exc:
            raise fail(f"the dbt project did not parse: {exc}", CONFIG_INVALID) from exc
        errors = validate_semantic_manifest(path)
        names = metric_names(path)
    for error in errors:
        typer.secho(error, fg=typer.colors.RED, err=True)
    if errors:
        raise fail(f"{len(errors)} semantic-layer error(s) above", CONFIG_INVALID)
    typer.echo(f"semantic manifest valid: {len(names)} metrics ({', '.join(names)})")
