"""Publish a billing run to BigQuery, atomically.

Billing partitions are (vendor, load_date) in ``raw.billing_lines`` and (source, load_date) in
the shared ``raw.quarantine`` / ``raw.pii_redactions``: other vendors and the gateway write the
same dates, so a ``table$YYYYMMDD`` WRITE_TRUNCATE would wipe their rows. Instead:

1. each staged DuckDB table is copied to Parquet (DuckDB ``COPY``; rows never pass through
   Python) and loaded by one load job into a staging table ``_stage_billing_<table>_<run>``
   (WRITE_TRUNCATE, schema from the contract, expiring after a day);
2. ONE multi-statement transaction deletes the run's partitions (``vendor``/``source`` and
   ``load_date IN UNNEST(@load_dates)``) and inserts the staged rows, then appends the audit;
   a failure anywhere rolls the whole run back;
3. the staging tables are dropped.

``raw.billing_lines`` is created partitioned by ``load_date`` and clustered by vendor and
provider; the shared tables, if billing creates them first, use ingestion-time partitioning like
the gateway's sink (``ingestion/raw/sinks/bigquery.py``), and rows go to their load date's
partition. The load-job pieces (Parquet export, staging config and expiry, the partition count,
the client) are that shared sink's; what is billing's here is the (vendor, dates) transaction.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from ingestion.billing.loader import StagedBilling
from ingestion.billing.schema import BILLING_LINES_COLUMNS
from ingestion.raw.schema import (
    LOAD_AUDIT_COLUMNS,
    PII_REDACTIONS_COLUMNS,
    QUARANTINE_COLUMNS,
    bigquery_ddl,
    column_names,
)
from ingestion.raw.sinks.bigquery import (
    BigQueryLoadError,
    BigQuerySink,
    BigQueryTarget,
    count_partition_rows,
    expire_tomorrow,
    export_parquet,
    make_client,
    staging_job_config,
)

TABLES = {
    "billing_lines": BILLING_LINES_COLUMNS,
    "quarantine": QUARANTINE_COLUMNS,
    "pii_redactions": PII_REDACTIONS_COLUMNS,
    "load_audit": LOAD_AUDIT_COLUMNS,
}


def publish_script(dataset: str, stage: dict[str, str]) -> str:
    """The transaction for one run (parameters @vendor, @source STRING, @load_dates
    ARRAY<DATE>). ``stage`` maps raw table -> its staging table."""
    t = {name: f"{dataset}.{name}" for name in TABLES}
    q = (QUARANTINE_COLUMNS, "quarantine")
    p = (PII_REDACTIONS_COLUMNS, "pii_redactions")
    lines = [
        bigquery_ddl(t["billing_lines"], BILLING_LINES_COLUMNS, "load_date", "vendor, provider")
        + ";",
        bigquery_ddl(t["quarantine"], QUARANTINE_COLUMNS, "_PARTITIONDATE") + ";",
        bigquery_ddl(t["pii_redactions"], PII_REDACTIONS_COLUMNS, "_PARTITIONDATE") + ";",
        bigquery_ddl(t["load_audit"], LOAD_AUDIT_COLUMNS, "_PARTITIONDATE") + ";",
        "BEGIN TRANSACTION;",
        f"DELETE FROM `{t['billing_lines']}` "
        "WHERE vendor = @vendor AND load_date IN UNNEST(@load_dates);",
        f"INSERT INTO `{t['billing_lines']}` ({column_names(BILLING_LINES_COLUMNS)}) "
        f"SELECT {column_names(BILLING_LINES_COLUMNS)} FROM `{dataset}.{stage['billing_lines']}`;",
    ]
    for columns, name in (q, p):
        lines += [
            f"DELETE FROM `{t[name]}` WHERE source = @source AND load_date IN UNNEST(@load_dates);",
            f"INSERT INTO `{t[name]}` (_PARTITIONTIME, {column_names(columns)}) "
            f"SELECT TIMESTAMP(load_date), {column_names(columns)} FROM `{dataset}.{stage[name]}`;",
        ]
    lines += [
        f"INSERT INTO `{t['load_audit']}` ({column_names(LOAD_AUDIT_COLUMNS)}) "
        f"SELECT {column_names(LOAD_AUDIT_COLUMNS)} FROM `{dataset}.{stage['load_audit']}`;",
        "COMMIT TRANSACTION;",
    ]
    return "\n".join(lines)


class BigQueryBillingSink(BigQueryTarget):
    """``publish(con, staged)`` for a ``bigquery://PROJECT/PREFIX`` warehouse (constructor,
    ``from_settings``, ``client`` and ``dataset`` are ``BigQueryTarget``'s)."""

    def default_client(self, project: str, location: str, keyfile: str | None):
        # this module's make_client, looked up at call time (what tests replace)
        return make_client(project, location, keyfile)

    def partition_rows(self, con, vendor: str, load_dates: list) -> dict:
        """Lines ``billing_lines`` holds now for ``vendor`` on each of ``load_dates`` (the
        shrink guard, ``ingestion/raw/guard.py``), read from those ``load_date`` partitions only."""
        from google.cloud import bigquery

        return count_partition_rows(
            self.client, self.location, f"{self.dataset}.billing_lines", load_dates,
            f"{vendor} billing lines", column="load_date", where="vendor = @vendor",
            params=(bigquery.ScalarQueryParameter("vendor", "STRING", vendor),))

    def append_audit(self, con, staged_audit: str) -> None:
        """Append audit rows alone (a refused load): one WRITE_APPEND load job into
        ``load_audit``, as the gateway sink does."""
        BigQuerySink(self.project, self.prefix, self.location, client=self.client).append_audit(
            con, staged_audit
        )

    def publish(self, con, staged: StagedBilling) -> None:
        from google.cloud import bigquery

        ds = bigquery.Dataset(self.dataset)
        ds.location = self.location
        self.client.create_dataset(ds, exists_ok=True)
        run = uuid.uuid4().hex[:12]
        sources = {
            "billing_lines": staged.lines,
            "quarantine": staged.quarantine,
            "pii_redactions": staged.pii_redactions,
            "load_audit": staged.audit,
        }
        stage = {name: f"_stage_billing_{name}_{run}" for name in TABLES}
        try:
            with tempfile.TemporaryDirectory(prefix="tokenbook-bq-billing-") as tmp:
                for name, columns in TABLES.items():
                    path = Path(tmp) / f"{name}.parquet"
                    export_parquet(con, sources[name], columns, path)
                    config = staging_job_config(columns, "tokenbook billing staging (dropped)")
                    dest = f"{self.dataset}.{stage[name]}"
                    with path.open("rb") as fh:
                        job = self.client.load_table_from_file(
                            fh, dest, job_config=config, location=self.location
                        )
                    job.result()
                    expire_tomorrow(self.client, dest)
            params = [
                bigquery.ScalarQueryParameter("vendor", "STRING", staged.vendor),
                bigquery.ScalarQueryParameter("source", "STRING", staged.source),
                bigquery.ArrayQueryParameter("load_dates", "DATE", list(staged.load_dates)),
            ]
            self.run_script(publish_script(self.dataset, stage), params)
        except BigQueryLoadError:
            raise
        except Exception as exc:
            raise BigQueryLoadError(
                f"BigQuery publish of {staged.vendor} billing for "
                f"{', '.join(map(str, staged.load_dates))} failed (nothing was replaced): {exc}"
            ) from exc
        finally:
            self.drop_staging(stage.values())
