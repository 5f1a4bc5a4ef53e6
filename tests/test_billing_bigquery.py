"""The BigQuery publish path for billing, offline: a patched client records the load jobs (Parquet
files, configs) and the one transaction script; the script must parse as BigQuery SQL."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from unittest import mock

import duckdb
import pyarrow.parquet as pq
import pytest
import sqlglot
from google.cloud import bigquery

from ingestion.billing.bigquery import BigQueryBillingSink
from ingestion.billing.loader import ingest_billing
from ingestion.raw.sinks.bigquery import BigQueryLoadError

FIX = Path(__file__).parent / "fixtures" / "billing"


class RecordingClient:
    """``held``: what the count query before the load answers, (load_date, rows) rows."""

    def __init__(self, fail_query: bool = False, held: list[tuple] | None = None):
        self.loads: list[tuple[str, bigquery.LoadJobConfig, object]] = []
        self.queries: list[tuple[str, bigquery.QueryJobConfig]] = []
        self.counts: list[tuple[str, bigquery.QueryJobConfig]] = []
        self.held = held or []
        self.deleted: list[str] = []
        self.fail_query = fail_query
        self.create_dataset = mock.Mock()
        self.get_table = mock.Mock(side_effect=lambda name: bigquery.Table(name))
        self.update_table = mock.Mock()

    def load_table_from_file(self, fh, dest, job_config, location):
        self.loads.append((dest, job_config, pq.read_table(fh)))
        return mock.Mock()

    def query(self, sql, job_config, location):
        job = mock.Mock()
        if sql.startswith("SELECT"):  # the shrink guard's count, before anything is loaded
            self.counts.append((sql, job_config))
            job.result.return_value = list(self.held)
            return job
        self.queries.append((sql, job_config))
        if self.fail_query:
            job.result.side_effect = RuntimeError("Transaction aborted")
        return job

    def delete_table(self, name, not_found_ok):
        self.deleted.append(name)


def test_publish_loads_staging_tables_and_runs_one_transaction():
    client = RecordingClient()
    sink = BigQueryBillingSink("orbit-finops", "tokenbook", client=client)
    con = duckdb.connect()
    (r,) = ingest_billing(
        con, "aws", [FIX / "aws_cur_legacy_bedrock.csv", FIX / "aws_cur2_bedrock.csv"], sink=sink
    )
    # nothing lands in the local DuckDB: it only staged the run
    assert (
        con.execute(
            "select count(*) from information_schema.tables where table_schema = 'raw'"
        ).fetchone()[0]
        == 0
    )

    staged = {dest.split(".")[-1].rsplit("_", 1)[0]: (cfg, tbl) for dest, cfg, tbl in client.loads}
    assert set(staged) == {
        "_stage_billing_billing_lines", "_stage_billing_quarantine",
        "_stage_billing_pii_redactions", "_stage_billing_load_audit",
    }  # fmt: skip
    for dest, cfg, _ in client.loads:
        assert dest.startswith("orbit-finops.tokenbook_raw._stage_billing_")
        assert cfg.source_format == bigquery.SourceFormat.PARQUET
        assert cfg.write_disposition == bigquery.WriteDisposition.WRITE_TRUNCATE
    lines = staged["_stage_billing_billing_lines"][1]
    assert lines.num_rows == r.rows_loaded == 8
    assert str(lines.schema.field("billed_cost").type) == "decimal128(38, 9)"
    assert set(lines.column("vendor").to_pylist()) == {"aws"}
    assert staged["_stage_billing_quarantine"][1].num_rows == r.rows_quarantined == 1
    assert staged["_stage_billing_load_audit"][1].num_rows == 2

    ((sql, cfg),) = client.queries
    statements = sqlglot.parse(sql, read="bigquery")
    assert len(statements) == 13  # 4 CREATE, BEGIN, 3 x (DELETE, INSERT), audit INSERT, COMMIT
    assert "BEGIN TRANSACTION;" in sql and sql.rstrip().endswith("COMMIT TRANSACTION;")
    assert (
        "DELETE FROM `orbit-finops.tokenbook_raw.billing_lines` WHERE vendor = @vendor "
        "AND load_date IN UNNEST(@load_dates);" in sql
    )
    assert "PARTITION BY load_date CLUSTER BY vendor, provider" in sql
    params = {p.name: p for p in cfg.query_parameters}
    assert params["vendor"].value == "aws" and params["source"].value == "billing_aws"
    assert params["load_dates"].array_type == "DATE"
    assert params["load_dates"].values == [date(2026, 11, 1)]
    # staging tables are dropped afterwards
    assert sorted(client.deleted) == sorted(d for d, _, _ in client.loads)


def test_failed_transaction_is_reported_and_staging_dropped():
    client = RecordingClient(fail_query=True)
    sink = BigQueryBillingSink("orbit-finops", "tokenbook", client=client)
    with pytest.raises(BigQueryLoadError, match="aws billing for 2026-11-01 failed"):
        ingest_billing(duckdb.connect(), "aws", [FIX / "aws_cur2_bedrock.csv"], sink=sink)
    assert len(client.deleted) == 4


def test_cli_publishes_to_bigquery(tmp_path, monkeypatch):
    import typer
    from typer.testing import CliRunner

    from tokenbook.commands.ingest_billing import billing

    client = RecordingClient()
    monkeypatch.setattr(
        "ingestion.billing.bigquery.make_client", lambda *a, **k: client, raising=True
    )
    app = typer.Typer()
    app.command("billing")(billing)
    app.command("noop")(lambda: None)
    res = CliRunner().invoke(
        app,
        ["billing", "--vendor", "gcp", "--month", "2026-11", "--warehouse",
         "bigquery://orbit-finops/tokenbook", str(FIX / "gcp_billing_export.jsonl")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "gcp load 2026-11-01: 1 file(s), 7 lines read, 3 loaded, 3 quarantined" in res.output
    assert len(client.queries) == 1


def test_shrink_guard_counts_the_vendor_partition_before_loading():
    """Issue 21: the (vendor, date) partitions are counted by one query before any load job;
    a run offering under 10% of them is refused and only its audit rows are appended."""
    from ingestion.billing.loader import BillingLoadRefused

    client = RecordingClient(held=[(date(2026, 11, 1), 500)])
    sink = BigQueryBillingSink("orbit-finops", "tokenbook", client=client)
    with pytest.raises(BillingLoadRefused, match="billing aws 2026-11-01 holds 500 rows and "
                                                 "the load offers 8"):
        ingest_billing(duckdb.connect(), "aws",
                       [FIX / "aws_cur_legacy_bedrock.csv", FIX / "aws_cur2_bedrock.csv"],
                       sink=sink)
    ((sql, cfg),) = client.counts
    assert sql == ("SELECT load_date AS load_date, COUNT(*) AS row_count FROM "
                   "`orbit-finops.tokenbook_raw.billing_lines` WHERE load_date IN "
                   "UNNEST(@load_dates) AND vendor = @vendor GROUP BY load_date")
    sqlglot.parse_one(sql, read="bigquery")
    params = {p.name: p for p in cfg.query_parameters}
    assert params["vendor"].value == "aws" and params["load_dates"].values == [date(2026, 11, 1)]
    (dest, config, table) = client.loads[0]
    assert len(client.loads) == 1 and dest == "orbit-finops.tokenbook_raw.load_audit"
    assert config.write_disposition == "WRITE_APPEND"
    assert set(table.column("status").to_pylist()) == {"refused"}
    assert client.queries == []  # no publish transaction
