"""The run's terminal output: one console, a timed step line, progress bars."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tokenbook.runner.plan import RunResult

console = Console(highlight=False)


@contextmanager
def step(result: RunResult, name: str, title: str) -> Iterator[None]:
    """Print the step's title, run it, record and print its time in ``result.steps``."""
    console.print(f"[bold cyan]>[/] {title}")
    t0 = time.perf_counter()
    yield
    result.steps[name] = time.perf_counter() - t0
    console.print(f"  [green]done[/] in {result.steps[name]:.1f} s")


def progress() -> Progress:
    return Progress(
        TextColumn("  {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
