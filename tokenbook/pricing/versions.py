"""``tokenbook prices load``: add a LiteLLM price map to the book as prices in force from a date.

The book is the default seed (shipped snapshot, in force from 2000-01-01) plus the rows
appended to ``raw.price_book_versions``. Loading a map with ``--effective-from D`` compares each
(provider, model) with its version in force on D; a model that is new or whose prices differ
gets a row with ``valid_from`` = D. Maps may be loaded in any order (an older snapshot slots in
between the versions around its date). Nothing is updated or deleted: dbt's ``int_price_book``
closes each row at the next version's ``valid_from``, so every call keeps the price of its
date; a call dated before its model's first version takes the earliest one, marked
``price_basis = 'earliest_known'``. Loading the same map twice appends nothing the second time.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from core.warehouse import Warehouse
from tokenbook.pricing.default import default_rows
from tokenbook.pricing.litellm import (
    COLUMNS,
    PRICE_COLUMNS,
    load_price_map,
    to_price_rows,
)

TABLE = "price_book_versions"
VERSION_COLUMNS: tuple[str, ...] = (*COLUMNS, "version_id")
_TEXT = {"provider", "model", "litellm_key", "litellm_provider", "source_snapshot", "version_id"}


class PriceBookError(ValueError):
    """A price map cannot be added to the book; the message says what to do."""


@dataclass(frozen=True)
class LoadResult:
    version_id: str
    valid_from: date
    new_models: int
    changed_models: int
    unchanged_models: int
    missing_models: int  # in the book but not in the map: kept at their last price

    @property
    def appended(self) -> int:
        return self.new_models + self.changed_models


def _duckdb_type(col: str) -> str:
    if col in _TEXT:
        return "VARCHAR"
    if col == "valid_from":
        return "DATE"
    if col == "tier_threshold_tokens":
        return "BIGINT"
    return "DECIMAL(38,9)"


def _bigquery_type(col: str) -> str:
    return {"VARCHAR": "STRING", "DATE": "DATE", "BIGINT": "INT64"}.get(
        _duckdb_type(col), "NUMERIC"
    )


def version_columns() -> tuple[tuple[str, str, str], ...]:
    """The table's columns as (name, DuckDB type, BigQuery type), like the loaders' schemas."""
    return tuple((c, _duckdb_type(c), _bigquery_type(c)) for c in VERSION_COLUMNS)


def duckdb_ddl(table: str) -> str:
    cols = ",\n  ".join(f"{c} {_duckdb_type(c)}" for c in VERSION_COLUMNS)
    return f"create table if not exists {table} (\n  {cols}\n)"


def _arrow_table(rows: list[dict[str, object]]):
    import pyarrow as pa

    types = {
        "VARCHAR": pa.string(),
        "DATE": pa.date32(),
        "BIGINT": pa.int64(),
        "DECIMAL(38,9)": pa.decimal128(38, 9),
    }
    arrays = {}
    for col in VERSION_COLUMNS:
        kind = _duckdb_type(col)
        values = [r.get(col) for r in rows]
        if kind == "DATE":
            values = [date.fromisoformat(v) if isinstance(v, str) else v for v in values]
        if kind == "DECIMAL(38,9)":
            values = [
                None if v is None else Decimal(v).quantize(Decimal("0.000000001")) for v in values
            ]
        arrays[col] = pa.array(values, type=types[kind])
    return pa.table(arrays)


def _same_prices(a: dict[str, object], b: dict[str, object]) -> bool:
    def norm(v: object) -> object:
        return None if v is None else Decimal(str(v)).normalize()

    return all(norm(a.get(c)) == norm(b.get(c)) for c in PRICE_COLUMNS)


def diff_book(
    current: list[dict[str, object]],
    incoming: list[dict[str, object]],
    valid_from: date,
    version_id: str,
) -> tuple[list[dict[str, object]], LoadResult]:
    """Rows to append for ``incoming`` (prices in force from ``valid_from``) against the
    ``current`` book (all versions).

    Each model is compared with its version in force on ``valid_from`` (the latest version
    starting on or before it), so an older snapshot loaded after newer ones slots in between
    without touching them: it is in force from its date until the next version. A model whose
    prices equal that version's gets no row. A model that already has a version starting on
    that very date with other prices is refused: versions never overwrite each other.
    """
    versions: dict[tuple[str, str], list[dict[str, object]]] = {}
    for row in current:
        versions.setdefault((str(row["provider"]), str(row["model"])), []).append(row)
    to_append: list[dict[str, object]] = []
    new = changed = unchanged = 0
    for row in incoming:
        key = (str(row["provider"]), str(row["model"]))
        history = versions.get(key, [])
        same_day = [v for v in history if _as_date(v["valid_from"]) == valid_from]
        if same_day:
            if all(_same_prices(v, row) for v in same_day):
                unchanged += 1
                continue
            raise PriceBookError(
                f"{key[0]}/{key[1]} already has other prices from {valid_from}; a version is "
                "never overwritten: load this map with another --effective-from date"
            )
        earlier = [v for v in history if _as_date(v["valid_from"]) < valid_from]
        previous = max(earlier, key=lambda v: _as_date(v["valid_from"])) if earlier else None
        if previous is not None and _same_prices(previous, row):
            unchanged += 1
            continue
        new += not history
        changed += bool(history)
        to_append.append({**row, "valid_from": valid_from, "version_id": version_id})
    incoming_keys = {(str(r["provider"]), str(r["model"])) for r in incoming}
    missing = sum(1 for k in versions if k not in incoming_keys)
    return to_append, LoadResult(version_id, valid_from, new, changed, unchanged, missing)


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _version_id(path: Path, valid_from: date) -> str:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return f"{valid_from.isoformat()}:{path.name}:sha256:{digest}"


def load_prices(path: str | Path, wh: Warehouse, valid_from: date, client=None) -> LoadResult:
    """Diff the LiteLLM map at ``path`` against the book in ``wh`` and append the changes to
    the raw ``price_book_versions`` table (DuckDB, or BigQuery through ``client``)."""
    path = Path(path)
    version_id = _version_id(path, valid_from) if path.exists() else ""
    incoming = to_price_rows(
        load_price_map(path), source_snapshot=version_id, valid_from=valid_from.isoformat()
    )
    if not incoming:
        raise PriceBookError(
            f"{path} holds no chat model of the priced providers (openai, anthropic, vertex_ai, "
            "bedrock, azure): nothing to load"
        )
    if wh.is_bigquery:
        return _load_bigquery(wh, incoming, valid_from, version_id, client)
    return _load_duckdb(wh, incoming, valid_from, version_id)


def _load_duckdb(wh: Warehouse, incoming, valid_from: date, version_id: str) -> LoadResult:
    con = wh.connect()
    try:
        table = wh.table("raw", TABLE)
        con.execute(duckdb_ddl(table))
        cur = con.execute(f"select {', '.join(VERSION_COLUMNS)} from {table}")
        names = [d[0] for d in cur.description]
        loaded = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        rows, result = diff_book(default_rows() + loaded, incoming, valid_from, version_id)
        if rows:
            arrow = _arrow_table(rows)
            con.register("incoming_prices", arrow)
            con.execute(
                f"insert into {table} ({', '.join(VERSION_COLUMNS)}) "
                f"select {', '.join(VERSION_COLUMNS)} from incoming_prices"
            )
            con.unregister("incoming_prices")
        return result
    finally:
        con.close()


def _load_bigquery(
    wh: Warehouse, incoming, valid_from: date, version_id: str, client
) -> LoadResult:
    from google.cloud import bigquery

    client = client or wh.bigquery_client()
    table_id = f"{wh.project}.{wh.schema('raw')}.{TABLE}"
    schema = [bigquery.SchemaField(c, _bigquery_type(c)) for c in VERSION_COLUMNS]
    client.create_table(bigquery.Table(table_id, schema=schema), exists_ok=True)
    query = f"select {', '.join(VERSION_COLUMNS)} from `{table_id}`"
    loaded = [dict(r.items()) for r in client.query(query).result()]
    rows, result = diff_book(default_rows() + loaded, incoming, valid_from, version_id)
    if rows:
        import pyarrow.parquet as pq  # pyarrow: imported on use (the CLI starts without it)

        buf = io.BytesIO()
        pq.write_table(_arrow_table(rows), buf)
        buf.seek(0)
        config = bigquery.LoadJobConfig(
            schema=schema,
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
        )
        client.load_table_from_file(buf, table_id, job_config=config).result()
    return result
