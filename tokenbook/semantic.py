"""The dbt semantic layer (MetricFlow) over the warehouse: parse the semantic manifest, validate
it offline, and run the ``mf`` command against the configured warehouse.

MetricFlow's CLI reads ``<dbt project>/target/semantic_manifest.json`` (a fixed path) and the
dbt profile. With ``dbt_target_path`` set (TOKENBOOK_DBT_TARGET_PATH), that project folder is
``dbt_target_path`` itself, given links to the project's files beside its target/ and logs/, so
``mf`` reads the manifest the last dbt call with those settings wrote there and never one in
dbt_project/ (two runs with different target paths, e.g. two test workers, do not overwrite each
other's manifest); the profile reads the warehouse from the environment (``tokenbook.dbt.dbt_env``).
The manifest names the DuckDB database after the warehouse file and the BigQuery project and
datasets after the warehouse URL, so it is parsed again for the warehouse asked for before
every ``mf`` call. ``mf`` runs in-process (its click command), so a warehouse that dbt has
open in this process is reused rather than locked out.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from core.settings import Settings
from tokenbook.dbt import DBT_PROJECT_DIR, _patched_environ, dbt_env, run_dbt

SEMANTIC_MANIFEST = DBT_PROJECT_DIR / "target" / "semantic_manifest.json"


class SemanticLayerError(RuntimeError):
    """The semantic manifest is missing or invalid; the message says what to fix."""


def mf_project_dir(settings: Settings) -> Path:
    """The dbt project folder ``mf`` runs in: dbt_project/ itself, or with ``dbt_target_path``
    set, that folder (where dbt writes target/ and logs/), given a link to each of the project's
    files and folders but target/ and logs/."""
    if not settings.dbt_target_path:
        return DBT_PROJECT_DIR
    folder = Path(settings.dbt_target_path).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    for entry in DBT_PROJECT_DIR.iterdir():
        link = folder / entry.name
        if entry.name not in {"target", "logs"} and not (link.is_symlink() or link.exists()):
            link.symlink_to(entry, target_is_directory=entry.is_dir())
    return folder


def parse_semantic_manifest(settings: Settings, target_path: str | Path | None = None) -> Path:
    """``dbt parse`` for the settings' warehouse; returns the semantic manifest written.

    Without ``target_path`` it is written where ``mf`` reads it (``mf_project_dir``'s target/:
    dbt_project/target unless ``dbt_target_path`` is set)."""
    if target_path is None:
        project = mf_project_dir(settings)
        if project == DBT_PROJECT_DIR:
            run_dbt(["parse", "--quiet"], dataclasses.replace(settings, dbt_target_path=None))
            return SEMANTIC_MANIFEST
        target_path = project
    run_dbt(["parse", "--quiet"], settings, target_path=target_path)
    return Path(target_path) / "target" / "semantic_manifest.json"


def validate_semantic_manifest(path: str | Path) -> list[str]:
    """The blocking issues MetricFlow finds in a semantic manifest (what ``mf validate-configs
    --skip-dw`` checks), as messages; empty when it is valid. Needs no warehouse."""
    from metricflow_semantic_interfaces.validations.semantic_manifest_validator import (
        SemanticManifestValidator,
    )
    from metricflow_semantics.model.dbt_manifest_parser import (
        parse_manifest_from_dbt_generated_manifest,
    )

    path = Path(path)
    if not path.exists():
        raise SemanticLayerError(f"{path} does not exist: run `dbt parse` first")
    manifest = parse_manifest_from_dbt_generated_manifest(path.read_text())
    result = SemanticManifestValidator().validate_semantic_manifest(manifest)
    return [issue.as_readable_str() for issue in result.errors]


def metric_names(path: str | Path) -> list[str]:
    """The metrics a semantic manifest defines."""
    return sorted(m["name"] for m in json.loads(Path(path).read_text())["metrics"])


def run_mf(args: Sequence[str], settings: Settings, parse: bool = True) -> int:
    """Run ``mf ARGS`` (dbt-metricflow's CLI) against the settings' warehouse; returns its exit
    code. Output goes to this process's stdout/stderr."""
    import click  # with MetricFlow (heavy): imported when `mf` runs
    import dbt_metricflow.cli.main as mf_main
    from dbt_metricflow.cli.main import cli

    if parse:
        parse_semantic_manifest(settings)
    project = mf_project_dir(settings)
    env = {
        **dbt_env(settings),
        "DBT_PROJECT_DIR": str(project),
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
    }
    cwd = Path.cwd()
    # mf's spinner is a thread that keeps writing frames to a pipe or a log file (and after a
    # refused query it never stops): only a terminal gets it
    spinner = mf_main.Halo
    if not sys.stdout.isatty() or os.environ.get("NO_COLOR"):
        mf_main.Halo = functools.partial(spinner, enabled=False)
    # mf installs SIGINT/SIGTERM handlers of its own (print "Got SIGINT", exit -1) and never
    # puts the previous ones back: in-process, every later Ctrl-C of this process (a load after
    # `tokenbook metrics` in one Python process, a test worker) would end there, not as exit 130
    handlers = _signal_handlers()
    with _patched_environ(env):
        try:
            os.chdir(project)  # mf writes its log under ./logs
            cli.main(args=list(args), prog_name="mf", standalone_mode=False)
        except SystemExit as exc:  # mf exits 1 on a refused query
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except click.ClickException as exc:  # an unknown mf option or command
            exc.show()
            return exc.exit_code
        finally:
            os.chdir(cwd)
            mf_main.Halo = spinner
            _restore_signal_handlers(handlers)
    return 0


def _signal_handlers() -> dict[int, object]:
    """The SIGINT and SIGTERM handlers now (only the main thread can change them)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}


def _restore_signal_handlers(handlers: dict[int, object]) -> None:
    for sig, handler in handlers.items():
        if handler is not None and signal.getsignal(sig) is not handler:
            signal.signal(sig, handler)
