"""`tokenbook demo-data`: write the demo organisation (owner: demo generator)."""

from __future__ import annotations


def demo_data() -> None:
    """Write a realistic, deterministic demo organisation (not built yet)."""
    raise NotImplementedError("demo-data is being built")
