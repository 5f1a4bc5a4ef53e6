"""Query helpers that work on either engine: an open DuckDB connection, or a BigQuery
``Warehouse`` (its client built from the settings, or one passed in, e.g. by tests)."""

from __future__ import annotations

from core.warehouse import Warehouse


def is_bigquery(source) -> bool:
    """Whether ``source`` is a BigQuery ``Warehouse`` (else: a DuckDB connection)."""
    return isinstance(source, Warehouse) and source.is_bigquery


def run_query(source, sql: str, client=None):
    """Run ``sql`` and return a pandas DataFrame: on DuckDB when ``source`` is a connection, on
    BigQuery when it is a BigQuery ``Warehouse`` (``client`` or the warehouse's own)."""
    if is_bigquery(source):
        client = client if client is not None else source.bigquery_client()
        return client.query(sql).to_dataframe()
    return source.execute(sql).df()


def table_exists(con, warehouse: Warehouse, layer: str, name: str, client=None) -> bool:
    """Whether the ``layer`` table ``name`` exists. ``con``: the DuckDB connection (unused on
    BigQuery). Errors other than "not there" propagate: a credentials or permission error is
    never taken for a table not built yet."""
    if warehouse.is_bigquery:
        from google.api_core.exceptions import NotFound  # google is imported on BigQuery only

        client = client if client is not None else warehouse.bigquery_client()
        try:
            client.get_table(f"{warehouse.project}.{warehouse.schema(layer)}.{name}")
        except NotFound:
            return False
        return True
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [warehouse.schema(layer), name],
    ).fetchone()
    return bool(row[0])
