"""`tokenbook run`: the main job (owner: integration)."""

from __future__ import annotations


def run() -> None:
    """Run the whole pipeline (not built yet)."""
    raise NotImplementedError("run is being built")
