"""`tokenbook report`: the HTML report (owner: report)."""

from __future__ import annotations


def report() -> None:
    """Write the self-contained HTML report (not built yet)."""
    raise NotImplementedError("report is being built")
