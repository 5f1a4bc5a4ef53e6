"""Warehouse URLs and connections.

``duckdb:///relative/path.duckdb`` (relative to the working directory),
``duckdb:////absolute/path.duckdb``, or ``bigquery://PROJECT/DATASET_PREFIX``.

Layers map to DuckDB schemas ``raw``, ``staging``, ``marts`` in one file, and to
BigQuery datasets ``<prefix>_raw``, ``<prefix>_staging``, ``<prefix>_marts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

LAYERS = ("raw", "staging", "intermediate", "marts")


class WarehouseError(ValueError):
    """A warehouse URL that cannot be used; the message says what to write instead."""


@dataclass(frozen=True)
class Warehouse:
    kind: Literal["duckdb", "bigquery"]
    path: Path | None = None  # duckdb file
    project: str | None = None  # bigquery project
    prefix: str | None = None  # bigquery dataset prefix

    @property
    def url(self) -> str:
        if self.kind == "duckdb":
            return f"duckdb:///{self.path}"
        return f"bigquery://{self.project}/{self.prefix}"

    def schema(self, layer: str) -> str:
        """Schema (DuckDB) or dataset (BigQuery) name of a layer."""
        if layer not in LAYERS:
            raise WarehouseError(f"unknown layer {layer!r}; expected one of {LAYERS}")
        return layer if self.kind == "duckdb" else f"{self.prefix}_{layer}"

    def table(self, layer: str, name: str) -> str:
        """Fully qualified table name, quoted for the warehouse's dialect."""
        if self.kind == "duckdb":
            return f"{self.schema(layer)}.{name}"
        return f"`{self.project}.{self.schema(layer)}.{name}`"


def parse_warehouse(url: str) -> Warehouse:
    if url.startswith("duckdb://"):
        rest = url[len("duckdb://") :]
        if not rest.startswith("/") or rest == "/":
            raise WarehouseError(
                f"bad DuckDB URL {url!r}: write duckdb:///relative/file.duckdb "
                "or duckdb:////absolute/file.duckdb"
            )
        path = Path(rest[1:])
        return Warehouse(kind="duckdb", path=path)
    if url.startswith("bigquery://"):
        parts = url[len("bigquery://") :].strip("/").split("/")
        if len(parts) != 2 or not all(parts):
            raise WarehouseError(
                f"bad BigQuery URL {url!r}: write bigquery://PROJECT/DATASET_PREFIX, "
                "e.g. bigquery://acme-finops/tokenbook"
            )
        return Warehouse(kind="bigquery", project=parts[0], prefix=parts[1])
    raise WarehouseError(
        f"unknown warehouse {url!r}: use duckdb:///warehouse/tokenbook.duckdb (the default) "
        "or bigquery://PROJECT/DATASET_PREFIX"
    )


def connect_duckdb(wh: Warehouse, read_only: bool = False):
    """Open the DuckDB file (creating its folder) with the layer schemas present."""
    import duckdb

    if wh.kind != "duckdb":
        raise WarehouseError(f"{wh.url} is not a DuckDB warehouse")
    assert wh.path is not None
    if not read_only:
        wh.path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(wh.path), read_only=read_only)
    if not read_only:
        for layer in LAYERS:
            con.execute(f"create schema if not exists {layer}")
    return con
