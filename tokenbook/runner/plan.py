"""What ``tokenbook run`` was asked to do (:class:`RunPlan`) and what it did (:class:`RunResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any


@dataclass
class RunPlan:
    data_dir: Path
    demo: bool = False
    demo_days: int = 120
    demo_end: date | None = None
    demo_seed: int = 7
    demo_scale: float = 1.0
    date: date | None = None
    date_from: date | None = None
    date_to: date | None = None
    forecast: bool = True
    report_path: Path | None = None


@dataclass
class RunResult:
    as_of: date | None = None
    steps: dict[str, float] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
