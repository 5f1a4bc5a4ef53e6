"""What one gateway load carries from stage to stage: the load context, its report, its errors.

``LoadContext`` replaces the long positional parameter lists the stages used to pass along:
settings, the staging connection and the sink, the input files, the run's date and window,
progress, the shrink-guard override, the start time and the stage clock. Each stage module
(``read``, ``dedupe``, ``stage``, ``publish``) takes the context and adds what it found
(the files' load dates) or builds its TEMP tables on ``ctx.con``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date as Date
from datetime import datetime
from pathlib import Path

from ingestion.gateway.schema import Sink
from ingestion.raw import guard
from ingestion.raw.audit import FileTotals

SOURCE = "gateway"

Progress = Callable[[str, int, int, str], None]


class IngestError(Exception):
    """A load that cannot proceed; the message says which file and what to do."""


class LoadRefused(guard.LoadRefused, IngestError):
    """The load would shrink a loaded partition (or holds no valid record): nothing was
    published, the files are in raw.load_audit with status ``refused``."""


@dataclass
class FileReport:
    source_file: str
    source_format: str
    load_date: Date
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int


@dataclass
class IngestReport(FileTotals):
    load_id: str
    warehouse: str
    files: list[FileReport] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def load_dates(self) -> list[Date]:
        return sorted({f.load_date for f in self.files})


class StageClock:
    """Wall and CPU seconds (all threads of this process) per stage, and in total."""

    def __init__(self) -> None:
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        self._marks = (self.t0, self.c0)
        self.timings: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        self.timings[stage] = now - self._marks[0]
        self.timings[stage + "_cpu"] = cpu - self._marks[1]
        self._marks = (now, cpu)

    def finish(self) -> dict[str, float]:
        self.timings["total"] = time.perf_counter() - self.t0
        self.timings["total_cpu"] = time.process_time() - self.c0
        return self.timings


@dataclass
class LoadContext:
    """One load: its inputs, where it stages and publishes, and how it reports.

    ``files``/``source_names``/``formats`` are parallel lists (a file's index is its
    ``file_idx`` in every staging table). ``date`` is the run's logical date, or None (each file
    dated by its latest valid call). ``file_dates`` is filled by ``dedupe.date_files``."""

    settings: object
    con: object  # duckdb.DuckDBPyConnection holding the TEMP staging tables
    sink: Sink
    report: IngestReport
    files: list[Path]
    source_names: list[str]
    formats: list[str]
    date: Date | None
    window_before: int
    window_after: int
    started: datetime
    clock: StageClock
    progress: Progress | None = None
    replace: bool = False
    file_dates: dict[int, Date] = field(default_factory=dict)
    workdir: Path | None = None  # the load's temporary folder (downloads, repaired copies)

    @property
    def n(self) -> int:
        return len(self.files)

    @property
    def direct(self) -> bool:
        """The sink's published rows are readable through ``con`` (DuckDB): the calls are
        inserted straight from a view over the staged rows, never copied first."""
        return self.sink.calls_table is not None

    @property
    def load_dates(self) -> list[Date]:
        return sorted(set(self.file_dates.values()))

    def say(self, stage: str, done: int, total: int, label: str) -> None:
        if self.progress is not None:
            self.progress(stage, done, total, label)
