"""Load the validated configuration into the warehouse, before dbt builds.

Why tables and not dbt seeds: a seed's path is fixed in dbt_project.yml and an absent file has no
table, while the models must build whatever the user configured. So every file becomes one typed
table ``raw.config_<name>`` (``<prefix>_raw.config_<name>`` on BigQuery), replaced on every load,
EMPTY when the file is absent ("not configured"). The dbt models read them through
``source('config', ...)``; the same step runs before ``tokenbook transform``, ``tokenbook run``
and the DAG's dbt tasks, so DuckDB, BigQuery and Airflow (cosmos) see the same inputs.
"""

from __future__ import annotations

import json
import textwrap
from datetime import date
from decimal import Decimal
from typing import Any

from core.settings import Settings
from core.warehouse import Warehouse
from tokenbook.orgconfig.check import OrgConfig, read_config
from tokenbook.orgconfig.spec import FILES, FileSpec

DUCKDB_TYPES = {"text": "varchar", "date": "date", "money": "decimal(38,9)", "number": "double",
                "integer": "bigint", "boolean": "boolean"}
BIGQUERY_TYPES = {"text": "STRING", "date": "DATE", "money": "NUMERIC", "number": "FLOAT64",
                  "integer": "INT64", "boolean": "BOOL"}


def duckdb_ddl(spec: FileSpec, table: str) -> str:
    cols = ", ".join(f"{c.name} {DUCKDB_TYPES[c.type]}" for c in spec.columns)
    return f"create or replace table {table} ({cols})"


def bigquery_schema(spec: FileSpec) -> list[Any]:
    from google.cloud import bigquery

    return [bigquery.SchemaField(c.name, BIGQUERY_TYPES[c.type],
                                 mode="REQUIRED" if c.required else "NULLABLE",
                                 description=c.doc[:1024]) for c in spec.columns]


def _json_value(value: object) -> object:
    if isinstance(value, (date, Decimal)):
        return str(value)
    return value


def load_config(settings: Settings) -> OrgConfig:
    """Validate the configuration folder and replace every config table. Raises ConfigInvalid
    (nothing is written then)."""
    cfg = read_config(settings.resolved_config_dir)
    wh = Warehouse.from_settings(settings)
    if wh.is_bigquery:
        _load_bigquery(cfg, wh)
    else:
        _load_duckdb(cfg, wh)
    return cfg


def _load_duckdb(cfg: OrgConfig, wh: Warehouse) -> None:
    con = wh.connect()
    try:
        con.execute("begin")
        for spec in FILES:
            table = wh.table("raw", spec.table)
            con.execute(duckdb_ddl(spec, table))
            rows = cfg[spec.name].rows
            if rows:
                names = [c.name for c in spec.columns]
                con.executemany(
                    f"insert into {table} ({', '.join(names)}) values ({', '.join('?' * len(names))})",
                    [[r[n] for n in names] for r in rows])
        con.execute("commit")
    finally:
        con.close()


def bigquery_jobs(cfg: OrgConfig, wh) -> list[tuple[str, str, list[dict[str, object]]]]:
    """(table id, create-or-replace DDL, rows as JSON values) per config file: what the
    BigQuery path sends (tests check it offline)."""
    jobs = []
    for spec in FILES:
        table_id = f"{wh.project}.{wh.schema('raw')}.{spec.table}"
        cols = ", ".join(f"{c.name} {BIGQUERY_TYPES[c.type]}" for c in spec.columns)
        ddl = f"create or replace table `{table_id}` ({cols})"
        rows = [{k: _json_value(v) for k, v in r.items()} for r in cfg[spec.name].rows]
        jobs.append((table_id, ddl, rows))
    return jobs


def _load_bigquery(cfg: OrgConfig, wh: Warehouse) -> None:
    """Each table: rows -> a load job with WRITE_TRUNCATE and the explicit schema; an absent
    file -> the empty typed table (a DDL statement)."""
    from google.cloud import bigquery

    client = wh.bigquery_client()
    dataset = bigquery.Dataset(f"{wh.project}.{wh.schema('raw')}")
    dataset.location = wh.bq_location
    client.create_dataset(dataset, exists_ok=True)  # a first build before any load
    for (table_id, ddl, rows), spec in zip(bigquery_jobs(cfg, wh), FILES, strict=True):
        if rows:
            job_config = bigquery.LoadJobConfig(
                schema=bigquery_schema(spec),
                source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
                write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE)
            client.load_table_from_json(rows, table_id, job_config=job_config).result()
        else:
            client.query(ddl, location=wh.bq_location).result()


def describe(cfg: OrgConfig) -> str:
    lines = [f"configuration: {cfg.folder or 'none (nothing configured)'}"]
    for name, status in cfg.status().items():
        lines.append(f"  {name + '.csv':28s} {status}")
    return "\n".join(lines)


def template(spec: FileSpec) -> str:
    """The file ``tokenbook init`` writes: a documented header, the column line and a
    commented example row."""
    out = [f"# {spec.filename}: {spec.title}", *(f"# {line}" for line in _wrap(spec.doc)),
           "#", "# Columns (one line each: name, type, meaning):"]
    for c in spec.columns:
        flags = ["required"] if c.required else []
        if c.name in spec.key:
            flags.append("key")
        if c.allowed:
            flags.append("one of " + "|".join(c.allowed))
        extra = f" [{', '.join(flags)}]" if flags else ""
        out.append(f"#   {c.name} ({c.type}{extra}): {c.doc}")
    out += ["#", f"# Absent file: {spec.absent}.",
            "# Dates YYYY-MM-DD; numbers with a dot, no currency sign; lines starting with # are comments.",
            "# Example (remove the leading '# ' to use it):",
            ",".join(c.name for c in spec.columns)]
    for ex in spec.example:
        out.append("# " + ",".join(_csv_cell(v) for v in ex))
    return "\n".join(out) + "\n"


def _csv_cell(value: str) -> str:
    return json.dumps(value) if ("," in value or '"' in value) else value


def _wrap(text: str, width: int = 96) -> list[str]:
    return textwrap.wrap(text, width) or [""]
