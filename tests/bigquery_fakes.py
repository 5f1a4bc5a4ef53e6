"""A stand-in for ``google.cloud.bigquery.Client`` (BigQuery cannot be reached from here):
it records what the client is sent and keeps every Parquet file a load job carries."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core import exceptions as gexc
from google.cloud import bigquery


class FakeJob:
    def __init__(self, error: Exception | None = None, rows: list | None = None):
        self._error = error
        self._rows = rows
        self.errors = [{"reason": "invalid", "message": "bad row"}] if error else None

    def result(self):
        if self._error:
            raise self._error
        return self if self._rows is None else list(self._rows)


class FakeClient:
    """Records datasets, load jobs, staging-table updates, queries and drops (in ``events``);
    keeps a copy of every Parquet file it is sent."""

    def __init__(self, fail_on: str | None = None, fail_query: bool = False,
                 held: dict | None = None):
        self.datasets: list[tuple[str, str | None, bool]] = []
        self.loads: list[dict] = []
        self.queries: list[dict] = []
        self.counts: list[dict] = []
        self.expiries: dict[str, object] = {}
        self.deleted: list[tuple[str, bool]] = []
        self.events: list[tuple[str, str]] = []
        self.fail_on = fail_on
        self.fail_query = fail_query
        # rows each partition holds, answered to the shrink guard's count query
        self.held: dict = dict(held or {})

    def create_dataset(self, ds, exists_ok=False):
        self.datasets.append((f"{ds.project}.{ds.dataset_id}", ds.location, exists_ok))
        return ds

    def load_table_from_file(self, fh, destination, job_config=None, location=None, **kw):
        table = pq.read_table(pa.BufferReader(fh.read()))
        self.loads.append(
            {"destination": destination, "config": job_config, "location": location, "table": table}
        )
        self.events.append(("load", destination))
        if self.fail_on and destination.startswith(self.fail_on):
            return FakeJob(gexc.BadRequest("Provided Schema does not match Table"))
        return FakeJob()

    def get_table(self, table_id):
        return bigquery.Table(table_id)

    def update_table(self, table, fields):
        assert fields == ["expires"]
        self.expiries[f"{table.project}.{table.dataset_id}.{table.table_id}"] = table.expires
        self.events.append(("expire", f"{table.project}.{table.dataset_id}.{table.table_id}"))
        return table

    def query(self, sql, job_config=None, location=None, **kw):
        if sql.startswith("SELECT") and "COUNT(*)" in sql:  # the shrink guard's count
            (param,) = [p for p in job_config.query_parameters if p.name == "load_dates"]
            self.counts.append({"sql": sql, "config": job_config, "location": location})
            self.events.append(("count", ""))
            return FakeJob(rows=[(d, self.held[d]) for d in param.values if self.held.get(d)])
        self.queries.append({"sql": sql, "config": job_config, "location": location})
        self.events.append(("query", ""))
        if self.fail_query:
            return FakeJob(gexc.BadRequest("Transaction is aborted due to concurrent update"))
        return FakeJob()

    def delete_table(self, table_id, not_found_ok=False):
        self.deleted.append((table_id, not_found_ok))
        self.events.append(("drop", table_id))
