"""`tokenbook transform`: build the dbt models (owner: dbt)."""

from __future__ import annotations


def transform() -> None:
    """Run dbt build on the configured warehouse (not built yet)."""
    raise NotImplementedError("transform is being built")
