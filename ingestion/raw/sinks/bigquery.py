"""The BigQuery sink: publish staged DuckDB tables to BigQuery by load jobs (every source).

The pieces every source's BigQuery publish uses: ``bq_schema`` (load-job schema from a raw
table's columns), ``export_parquet`` (staged DuckDB table -> Parquet, rows never in Python),
``staging_job_config`` and ``expire_tomorrow`` (a WRITE_TRUNCATE staging table that expires
after a day), ``count_partition_rows`` (what the shrink guard compares), ``make_client``,
``BigQueryLoadError`` and ``BigQueryTarget`` (project, dataset, location, the lazy client and
``from_settings``). Billing's publish (``ingestion/billing/bigquery.py``) is built on them.

``BigQuerySink`` implements ``ingestion.gateway.schema.Sink``. For each raw table it copies the
staged DuckDB table to a temporary Parquet file with DuckDB's ``COPY`` (the rows never pass
through Python) and runs ONE load job. ``gateway_calls`` (gateway-only) is loaded straight into
``PROJECT.<prefix>_raw.gateway_calls$YYYYMMDD``:

- ``source_format=PARQUET``, ``write_disposition=WRITE_TRUNCATE`` (replaces that partition only,
  atomically: a failed job leaves the previous partition as it was),
  ``create_disposition=CREATE_IF_NEEDED``;
- ``time_partitioning=TimePartitioning(type_=DAY)`` with no field: ingestion-time partitioning,
  the partition chosen by the ``$YYYYMMDD`` decorator (the load date);
- ``clustering_fields=["feature"]``;
- the schema from the BigQuery types of ``ingestion/gateway/schema.py`` and
  ``ingestion/raw/schema.py`` (so an empty partition still creates the
  table with the right columns).

``quarantine`` and ``pii_redactions`` are shared with the billing and evals loads (column
``source``), so a partition WRITE_TRUNCATE would wipe their rows of the day: instead they are
loaded (WRITE_TRUNCATE, expiring after a day) into staging tables
``<prefix>_raw._tb_stage_<table>_<YYYYMMDD>_<run>`` and published by ONE multi-statement
transaction that deletes only this sink's ``source`` rows of the load date (query parameters
``@load_date``, ``@source``) and inserts the staged rows into the load date's partition, after
which the staging tables are dropped (as ``ingestion/billing/bigquery.py`` does).

The data-quality results of each checked date (``tokenbook check``) replace
``validation_results$YYYYMMDD`` (one WRITE_TRUNCATE load job per date, like ``gateway_calls``,
allowed to add the columns an older table lacks; only ``tokenbook check`` writes
that table). Audit rows are appended (``WRITE_APPEND``) to ``load_audit``. Datasets are created if missing,
in the configured location. Column types in the Parquet file: DATE, TIMESTAMP (UTC-adjusted),
DECIMAL(38,9) -> NUMERIC, BIGINT -> INT64, DOUBLE -> FLOAT64, BOOLEAN, VARCHAR -> STRING and
JSON (Parquet JSON logical type) -> JSON.

Credentials: a service-account key file (setting ``bq_keyfile`` / ``TOKENBOOK_BQ_KEYFILE``) or
Application Default Credentials (``gcloud auth application-default login``, workload identity,
``GOOGLE_APPLICATION_CREDENTIALS``). Keys are never in code.

``gs://`` inputs are downloaded by ``ingestion/raw/fetch.py``.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Self

from core.warehouse import BigQueryClientError, Warehouse, make_bigquery_client
from ingestion.gateway.schema import GATEWAY_CALLS_COLUMNS, PartitionTables
from ingestion.raw.schema import TABLES, Columns, bigquery_ddl, column_names

# table name -> (columns, clustering fields)
RAW_TABLES: dict[str, tuple[Columns, list[str] | None]] = {
    "gateway_calls": (GATEWAY_CALLS_COLUMNS, ["feature"]),
    **{name: (columns, None) for name, columns in TABLES.items()},
}

# Raw tables shared by several sources (column ``source``): published by delete + insert.
SHARED_TABLES: tuple[str, ...] = ("quarantine", "pii_redactions")


class BigQueryLoadError(RuntimeError):
    """A BigQuery load failed; the message names the table and the load date."""


def bq_schema(columns: tuple[tuple[str, str, str], ...]) -> list:
    from google.cloud import bigquery

    return [bigquery.SchemaField(name, bq_type, mode="NULLABLE") for name, _, bq_type in columns]


def load_job_config(table: str, write_disposition: str):
    """The LoadJobConfig used for ``table`` (``WRITE_TRUNCATE`` for a partition,
    ``WRITE_APPEND`` for the audit)."""
    from google.cloud import bigquery

    columns, clustering = RAW_TABLES[table]
    config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.PARQUET,
        write_disposition=write_disposition,
        create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
        time_partitioning=bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY),
        clustering_fields=clustering,
        schema=bq_schema(columns),
    )
    if table == "validation_results":
        # a table created by an earlier version lacks suite, min/max_value, look_at: a load
        # into one partition (WRITE_TRUNCATE with a decorator) may add them
        config.schema_update_options = [bigquery.SchemaUpdateOption.ALLOW_FIELD_ADDITION]
    return config


def staging_job_config(table: str | Columns,
                       description: str = "tokenbook gateway staging (dropped after publish)"):
    """The LoadJobConfig for a staging table: WRITE_TRUNCATE, no partitioning. ``table`` is a
    name of ``RAW_TABLES`` or the columns of another source's table (billing_lines)."""
    from google.cloud import bigquery

    columns = RAW_TABLES[table][0] if isinstance(table, str) else table
    return bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.PARQUET,
        write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
        schema=bq_schema(columns),
        destination_table_description=description,
    )


def expire_tomorrow(client, table_id: str) -> None:
    """Set a one-day expiry on a staging table, so a crashed run leaves nothing behind."""
    table = client.get_table(table_id)
    # wall clock for a staging table's expiry only, never for data
    table.expires = datetime.now(UTC) + timedelta(days=1)
    client.update_table(table, ["expires"])


def shared_publish_script(dataset: str, stage: dict[str, str]) -> str:
    """The transaction publishing the staged shared tables for one load date (parameters
    ``@load_date`` DATE and ``@source`` STRING). ``stage`` maps raw table -> staging table
    (both in ``dataset``). The target tables are created (ingestion-time partitioned, like the
    partition loads) if missing; only ``source = @source`` rows of the date are deleted."""
    lines = []
    for table in SHARED_TABLES:
        columns, _ = RAW_TABLES[table]
        lines.append(bigquery_ddl(f"{dataset}.{table}", columns, "_PARTITIONDATE") + ";")
    lines.append("BEGIN TRANSACTION;")
    for table in SHARED_TABLES:
        columns, _ = RAW_TABLES[table]
        cols = column_names(columns)
        lines += [
            f"DELETE FROM `{dataset}.{table}` WHERE load_date = @load_date AND source = @source;",
            f"INSERT INTO `{dataset}.{table}` (_PARTITIONTIME, {cols}) "
            f"SELECT TIMESTAMP(@load_date), {cols} FROM `{dataset}.{stage[table]}`;",
        ]
    lines.append("COMMIT TRANSACTION;")
    return "\n".join(lines)


def partition_rows_sql(table: str, column: str = "_PARTITIONDATE", where: str = "") -> str:
    """Rows per partition of ``table`` for ``@load_dates`` (ARRAY<DATE>), filtered on the
    partitioning ``column`` (so only those partitions are read); ``where`` adds a condition
    (e.g. ``vendor = @vendor``)."""
    extra = f" AND {where}" if where else ""
    return (
        f"SELECT {column} AS load_date, COUNT(*) AS row_count FROM `{table}` "
        f"WHERE {column} IN UNNEST(@load_dates){extra} GROUP BY load_date"
    )


def count_partition_rows(client, location, table: str, load_dates, what: str,
                         column: str = "_PARTITIONDATE", where: str = "",
                         params: tuple = ()) -> dict[date, int]:
    """Rows ``table`` holds now for each of ``load_dates``: ONE query job, pruned on the
    partitioning ``column`` (the shrink guard runs it before any WRITE_TRUNCATE load job). A
    table not created yet holds none; any other failure is a BigQueryLoadError naming ``what``
    was being counted."""
    from google.api_core import exceptions as gexc
    from google.cloud import bigquery

    dates = sorted(set(load_dates))
    config = bigquery.QueryJobConfig(query_parameters=[
        *params, bigquery.ArrayQueryParameter("load_dates", "DATE", dates)])
    try:
        job = client.query(partition_rows_sql(table, column, where), job_config=config,
                           location=location)
        return {row[0]: int(row[1]) for row in job.result()}
    except gexc.NotFound:
        return {}
    except Exception as exc:
        raise BigQueryLoadError(
            f"cannot count the {what} held for {', '.join(map(str, dates))} before replacing "
            f"them: {exc}"
        ) from exc


def partition_id(load_date: date) -> str:
    return load_date.strftime("%Y%m%d")


def _rows_of(staged: str, load_date: date) -> str:
    """The rows of ``load_date`` in a staged DuckDB table that holds several dates, as a
    subquery that ``export_parquet`` and the staged-source check read like a table."""
    return f"(select * from {staged} where load_date = DATE '{load_date.isoformat()}')"


def export_parquet(con, staged: str, columns: tuple[tuple[str, str, str], ...], dest: Path) -> int:
    """COPY the staged DuckDB table to ``dest`` with the raw table's columns, in its order and
    types (timestamps UTC-adjusted), and return the row count written."""
    exprs = []
    for name, ddb_type, _ in columns:
        if ddb_type == "TIMESTAMP":
            exprs.append(f"cast({name} as timestamp) at time zone 'UTC' as {name}")
        else:
            exprs.append(f"cast({name} as {ddb_type}) as {name}")
    dest = Path(dest)
    con.execute(
        f"copy (select {', '.join(exprs)} from {staged}) to '{dest.as_posix()}' "
        "(format parquet, compression zstd)"
    )
    import pyarrow.parquet as pq

    return pq.read_metadata(dest).num_rows


def make_client(project: str, location: str, keyfile: str | None = None):
    """``core.warehouse.make_bigquery_client``, its error raised as a load error (what ingest
    commands report)."""
    try:
        return make_bigquery_client(project, location, keyfile)
    except BigQueryClientError as exc:
        raise BigQueryLoadError(str(exc)) from exc


class BigQueryTarget:
    """Where a source's BigQuery publish goes: ``PROJECT.<prefix>_raw`` in ``location``, and the
    client, made on first use (``client`` given, else ``client_factory``, else
    ``default_client``: ``make_client``). Every source's sink (``BigQuerySink``, billing's
    ``BigQueryBillingSink``) is one."""

    def __init__(
        self,
        project: str,
        prefix: str,
        location: str = "US",
        client=None,
        keyfile: str | None = None,
        client_factory: Callable[..., object] | None = None,
    ):
        self.project = project
        self.prefix = prefix
        self.location = location
        self._client = client
        self._keyfile = keyfile
        self._client_factory = client_factory

    @classmethod
    def from_settings(cls, settings, client=None, **kwargs) -> Self:
        """From ``core.settings.Settings`` whose warehouse is ``bigquery://PROJECT/PREFIX``;
        ``kwargs`` go to the constructor."""
        wh = Warehouse.from_settings(settings)
        if wh.kind != "bigquery":
            raise BigQueryLoadError(
                f"warehouse {settings.warehouse} is not BigQuery: use bigquery://PROJECT/PREFIX"
            )
        return cls(
            project=wh.project,
            prefix=wh.prefix,
            location=settings.bq_location,
            client=client,
            keyfile=settings.bq_keyfile,
            **kwargs,
        )

    def default_client(self, project: str, location: str, keyfile: str | None):
        """The client made when none and no factory was given (a subclass may look up its own
        module's ``make_client``)."""
        return make_client(project, location, keyfile)

    @property
    def client(self):
        if self._client is None:
            factory = self._client_factory or self.default_client
            self._client = factory(self.project, self.location, self._keyfile)
        return self._client

    @property
    def dataset(self) -> str:
        return f"{self.project}.{self.prefix}_raw"

    def run_script(self, sql: str, params: list) -> None:
        """Run a parameterised multi-statement script (a publish transaction) to completion."""
        from google.cloud import bigquery

        job = self.client.query(
            sql, job_config=bigquery.QueryJobConfig(query_parameters=params),
            location=self.location,
        )
        job.result()

    def drop_staging(self, names) -> None:
        """Delete staging tables of ``dataset`` (those never created included)."""
        for name in names:
            self.client.delete_table(f"{self.dataset}.{name}", not_found_ok=True)


class BigQuerySink(BigQueryTarget):
    """Publishes a load date's staged tables to BigQuery (``schema.Sink``)."""

    def __init__(self, *args, source: str = "gateway", **kwargs):
        """``BigQueryTarget``'s arguments, and the ``source`` whose rows this sink replaces."""
        super().__init__(*args, **kwargs)
        # raw.quarantine / raw.pii_redactions are shared: only this source's rows are replaced
        self.source = source
        self._datasets_ready: set[str] = set()

    @classmethod
    def from_settings(cls, settings, client=None, source: str = "gateway") -> Self:
        """From ``core.settings.Settings`` whose warehouse is ``bigquery://PROJECT/PREFIX``."""
        return super().from_settings(settings, client, source=source)

    def ensure_dataset(self) -> None:
        """Create ``<prefix>_raw`` in the configured location if it does not exist."""
        if self.dataset in self._datasets_ready:
            return
        from google.cloud import bigquery

        ds = bigquery.Dataset(self.dataset)
        ds.location = self.location
        try:
            self.client.create_dataset(ds, exists_ok=True)
        except Exception as exc:
            raise BigQueryLoadError(
                f"cannot create or find dataset {self.dataset} in {self.location}: {exc}"
            ) from exc
        self._datasets_ready.add(self.dataset)

    def destination(self, table: str, load_date: date | None = None) -> str:
        base = f"{self.dataset}.{table}"
        return f"{base}${partition_id(load_date)}" if load_date else base

    def load_table(
        self,
        con,
        table: str,
        staged: str,
        load_date: date | None,
        write_disposition: str,
        dest: str | None = None,
        config=None,
    ) -> int:
        """Export ``staged`` to Parquet and run one load job into ``table`` (its ``load_date``
        partition when given), or into ``dest`` with ``config`` when given (staging). Returns
        the rows loaded."""
        columns, _ = RAW_TABLES[table]
        self.ensure_dataset()
        dest = dest or self.destination(table, load_date)
        when = load_date.isoformat() if load_date else "the audit"
        with tempfile.TemporaryDirectory(prefix="tokenbook-bq-") as tmp:
            path = Path(tmp) / f"{table}.parquet"
            rows = export_parquet(con, staged, columns, path)
            config = config or load_job_config(table, write_disposition)
            job = None
            try:
                with path.open("rb") as fh:
                    job = self.client.load_table_from_file(
                        fh, dest, job_config=config, location=self.location
                    )
                job.result()
            except Exception as exc:
                detail = getattr(exc, "errors", None) or getattr(job, "errors", None) or ""
                raise BigQueryLoadError(
                    f"BigQuery load of {table} for {when} into {dest} failed: {exc} {detail}".strip()
                ) from exc
        return rows

    def _check_staged_source(self, con, table: str, staged: str, load_date: date) -> None:
        """The delete only covers ``source``'s rows of ``load_date``: refuse staged rows outside
        it (they could never be replaced by a rerun)."""
        bad = con.execute(
            f"select count(*) from {staged} "
            "where source is distinct from ? or load_date is distinct from ?",
            [self.source, load_date],
        ).fetchone()[0]
        if bad:
            raise BigQueryLoadError(
                f"{bad} staged {table} row(s) for {load_date.isoformat()} are not "
                f"source={self.source!r} of that load date; stage only this sink's rows "
                "(or create the sink with the matching source)"
            )

    # published rows cannot be read back through the staging connection
    calls_table = None

    def partition_rows(self, con, load_dates: list[date]) -> dict[date, int]:
        """Rows ``gateway_calls`` holds now for each of ``load_dates`` (the shrink guard,
        ``ingestion/raw/guard.py``), read from those ``_PARTITIONDATE`` partitions only."""
        return count_partition_rows(self.client, self.location,
                                    f"{self.dataset}.gateway_calls", load_dates,
                                    "rows gateway_calls")

    def replace_partitions(self, con, load_dates: list[date], staged: PartitionTables,
                           progress: Callable[[int, int, str], None] | None = None) -> None:
        """``replace_partition`` for each load date, in date order, from ``staged``'s rows of
        that date (the staged tables may hold several dates)."""
        dates = sorted(set(load_dates))
        for k, d in enumerate(dates):
            if progress:
                progress(k, len(dates), d.isoformat())
            of_date = PartitionTables(
                *(_rows_of(t, d)
                  for t in (staged.gateway_calls, staged.quarantine, staged.pii_redactions))
            )
            self.replace_partition(con, d, of_date)

    def replace_partition(self, con, load_date: date, staged: PartitionTables) -> None:
        """Replace the load date's gateway rows: the staged shared tables are first loaded into
        staging tables, then ``gateway_calls$YYYYMMDD`` is loaded with WRITE_TRUNCATE, then ONE
        transaction replaces this source's rows of the date in ``quarantine`` and
        ``pii_redactions``; the staging tables are dropped whatever happens."""
        from google.cloud import bigquery

        shared = {"quarantine": staged.quarantine, "pii_redactions": staged.pii_redactions}
        for table, staged_name in shared.items():
            self._check_staged_source(con, table, staged_name, load_date)
        run = uuid.uuid4().hex[:12]
        day = partition_id(load_date)
        stage = {table: f"_tb_stage_{table}_{day}_{run}" for table in SHARED_TABLES}
        try:
            for table in SHARED_TABLES:
                dest = f"{self.dataset}.{stage[table]}"
                self.load_table(
                    con, table, shared[table], load_date, "WRITE_TRUNCATE",
                    dest=dest, config=staging_job_config(table),
                )  # fmt: skip
                self._expire_tomorrow(dest)
            self.load_table(con, "gateway_calls", staged.gateway_calls, load_date, "WRITE_TRUNCATE")
            params = [
                bigquery.ScalarQueryParameter("load_date", "DATE", load_date),
                bigquery.ScalarQueryParameter("source", "STRING", self.source),
            ]
            try:
                self.run_script(shared_publish_script(self.dataset, stage), params)
            except Exception as exc:
                raise BigQueryLoadError(
                    f"BigQuery publish of quarantine and pii_redactions for "
                    f"{load_date.isoformat()} (source {self.source!r}) failed, the transaction "
                    f"was rolled back (gateway_calls${day} was already replaced; rerun the "
                    f"date): {exc}"
                ) from exc
        finally:
            self.drop_staging(stage.values())

    def _expire_tomorrow(self, table_id: str) -> None:
        """Set a one-day expiry on a staging table, so a crashed run leaves nothing behind."""
        try:
            expire_tomorrow(self.client, table_id)
        except Exception as exc:
            raise BigQueryLoadError(
                f"cannot set the expiry of staging table {table_id}: {exc}"
            ) from exc

    def replace_validation_results(self, con, load_dates: list[date], staged: str) -> None:
        """Replace ``validation_results$YYYYMMDD`` of each load date with ``staged``'s rows of
        that date: one WRITE_TRUNCATE load job per date (a date with no result rows empties
        its partition, as a rerun on DuckDB does)."""
        for d in sorted(set(load_dates)):
            self.load_table(con, "validation_results", _rows_of(staged, d), d, "WRITE_TRUNCATE")

    def append_audit(self, con, staged_audit: str) -> None:
        """Append the staged audit rows to ``load_audit`` (WRITE_APPEND)."""
        self.load_table(con, "load_audit", staged_audit, None, "WRITE_APPEND")

