"""`tokenbook init [DIR]` and `tokenbook config check`: the organisation's configuration folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokenbook.commands.common import ConfigDirOpt, config_failure, fail, resolve
from tokenbook.orgconfig import ConfigInvalid, read_config
from tokenbook.orgconfig.load import describe, template
from tokenbook.orgconfig.spec import FILES

app = typer.Typer(help="The organisation's configuration folder (README: Your organisation).",
                  no_args_is_help=True)


def init(
    folder: Annotated[
        Path, typer.Argument(help="Folder to create (default ./config).")
    ] = Path("config"),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite files that already exist.")
    ] = False,
) -> None:
    """Write the configuration folder: every file with its documented header and a commented
    example. Fill in what you know; a file you delete means "not configured"."""
    folder.mkdir(parents=True, exist_ok=True)
    existing = [spec.filename for spec in FILES if (folder / spec.filename).exists()]
    if existing and not force:
        raise fail(f"{folder} already holds {', '.join(existing)}: nothing written "
                   "(--force overwrites them)")
    for spec in FILES:
        (folder / spec.filename).write_text(template(spec), encoding="utf-8")
    typer.echo(f"wrote {len(FILES)} files to {folder}; check them with "
               f"`tokenbook config check --config-dir {folder}`")


@app.command("check")
def check(config_dir: ConfigDirOpt = None) -> None:
    """Validate the configuration folder: every error with its file, line, column and what to
    write instead (exit 4 when invalid)."""
    settings, _ = resolve(config_dir=config_dir)
    try:
        cfg = read_config(settings.resolved_config_dir)
    except ConfigInvalid as exc:
        raise config_failure(exc) from exc
    typer.echo(describe(cfg))
    typer.echo("configuration is valid")
