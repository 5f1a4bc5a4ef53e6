"""Publish: write the run's four tables into the marts schema, idempotently per ``as_of``.

DuckDB: one transaction deletes the run date's rows and inserts the new ones.
BigQuery: one load job per table into the partition ``table$YYYYMMDD`` (partitioned by
``as_of``) with WRITE_TRUNCATE, from Parquet built with Arrow (money as NUMERIC).
Money and forecast values are DECIMAL(38,9) / NUMERIC; shares and factors are floats.
"""

from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

MONEY = "decimal"
_KEYS = [
    ("unique_id", "string"),
    ("series_level", "string"),
    ("metric", "string"),
    ("unit", "string"),
    ("provider", "string"),
    ("model", "string"),
    ("feature", "string"),
    ("customer_segment", "string"),
]

TABLES: dict[str, list[tuple[str, str]]] = {
    "forecast_daily": [
        ("as_of", "date"),
        *_KEYS,
        ("ds", "date"),
        ("method", "string"),
        ("spec", "string"),
        ("model_version", "string"),
        ("interval_level", "float"),
        ("calibration_factor", "float"),
        ("p10", MONEY),
        ("p50", MONEY),
        ("p90", MONEY),
    ],
    "forecast_monthly": [
        ("as_of", "date"),
        *_KEYS,
        ("month", "date"),
        ("month_kind", "string"),
        ("actual_to_date", MONEY),
        ("forecast_days", "int"),
        ("p10", MONEY),
        ("p50", MONEY),
        ("p90", MONEY),
        ("interval_level", "float"),
        ("method", "string"),
        ("spec", "string"),
        ("model_version", "string"),
        ("calibration_factor", "float"),
        ("monthly_budget_usd", MONEY),
        ("prob_over_budget", "float"),
        ("budget_status", "string"),
        # How good the monthly figure is (forecasting/monthly.py): the series' own backtest.
        ("backtest_status", "string"),
        ("backtest_origins", "int"),
        ("backtest_coverage", "float"),
        ("backtest_mdape", "float"),
        ("run_rate_mdape", "float"),
        ("volatility", "float"),
        ("events_applied", "string"),
    ],
    "forecast_backtest": [
        ("as_of", "date"),
        *_KEYS,
        ("method", "string"),
        ("spec", "string"),
        ("model_version", "string"),
        ("phase", "string"),
        ("n_series", "int"),
        ("n_cutoffs", "int"),
        ("first_cutoff", "date"),
        ("last_cutoff", "date"),
        ("horizon_days", "int"),
        ("n_points", "int"),
        ("interval_level", "float"),
        ("coverage_raw", "float"),
        ("coverage_calibrated", "float"),
        ("calibration_factor", "float"),
        ("sum_coverage_raw", "float"),
        ("sum_coverage_calibrated", "float"),
        ("sum_calibration_factor", "float"),
        ("anomaly_level", "float"),
        ("anomaly_coverage_raw", "float"),
        ("anomaly_coverage_calibrated", "float"),
        ("anomaly_calibration_factor", "float"),
        ("mape", "float"),
        ("mase", "float"),
        ("mae_ratio_vs_snaive", "float"),
        # phase = 'monthly': next months' sums at rolling origins (forecasting/monthly.py)
        ("horizon_months", "int"),
        ("origin_kind", "string"),
        ("n_origins", "int"),
        ("backtest_status", "string"),
        ("pooled_level", "string"),
        ("methods_chosen", "string"),
        ("monthly_coverage", "float"),
        ("monthly_mdape", "float"),
        ("run_rate_mdape", "float"),
        ("run_rate_coverage", "float"),
        ("seasonal_naive_mdape", "float"),
        ("seasonal_naive_coverage", "float"),
        ("theta_mdape", "float"),
        ("theta_coverage", "float"),
        ("prophet_mdape", "float"),
        ("prophet_coverage", "float"),
    ],
    "anomaly_flags": [
        ("as_of", "date"),
        *_KEYS,
        ("ds", "date"),
        ("actual", MONEY),
        ("expected", MONEY),
        ("lower", MONEY),
        ("upper", MONEY),
        ("interval_level", "float"),
        ("is_anomaly", "bool"),
        ("outside_interval", "bool"),
        ("known_event", "string"),
        ("direction", "string"),
        ("severity", "float"),
        ("method", "string"),
        ("spec", "string"),
        ("model_version", "string"),
        ("fit_through", "date"),
        ("calibration_factor", "float"),
        ("why", "string"),
    ],
}

_DUCK = {
    "date": "DATE",
    "string": "VARCHAR",
    "float": "DOUBLE",
    "int": "BIGINT",
    "bool": "BOOLEAN",
    MONEY: "DECIMAL(38,9)",
}
_BQ = {
    "date": "DATE",
    "string": "STRING",
    "float": "FLOAT64",
    "int": "INT64",
    "bool": "BOOL",
    MONEY: "NUMERIC",
}
_ARROW = {
    "date": pa.date32(),
    "string": pa.string(),
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    MONEY: pa.decimal128(38, 9),
}


def to_arrow(name: str, df: pd.DataFrame) -> pa.Table:
    """The frame in the table's exact column order and types (money rounded to 9 places)."""
    arrays, fields = [], []
    n = len(df)
    for col, kind in TABLES[name]:
        values = df[col] if col in df else pd.Series([None] * n, index=df.index)
        if kind == "date":
            arr = pa.array(pd.to_datetime(values).dt.date if n else [], type=pa.date32())
        elif kind == MONEY:
            v = pd.to_numeric(values, errors="coerce").astype("float64").round(9)
            arr = pa.array(v.to_numpy(), type=pa.float64(), from_pandas=True).cast(
                _ARROW[MONEY], safe=False
            )
        elif kind == "string":
            text = values.astype("string").to_numpy(dtype=object, na_value=None)
            arr = pa.array(text, type=pa.string())
        elif kind == "int":
            arr = pa.array(pd.to_numeric(values, errors="coerce").astype("Int64"), type=pa.int64())
        elif kind == "bool":
            arr = pa.array(values.astype("boolean"), type=pa.bool_())
        else:
            arr = pa.array(
                pd.to_numeric(values, errors="coerce").astype("float64").to_numpy(),
                type=pa.float64(),
                from_pandas=True,
            )
        arrays.append(arr)
        fields.append(pa.field(col, _ARROW[kind]))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def duckdb_ddl(name: str, schema: str = "marts") -> str:
    cols = ", ".join(f"{c} {_DUCK[k]}" for c, k in TABLES[name])
    return f"create table if not exists {schema}.{name} ({cols})"


def publish_duckdb(con, tables: dict[str, pd.DataFrame], as_of, schema: str = "marts") -> dict:
    """Replace the ``as_of`` rows of each table in one transaction; returns rows written."""
    as_of = pd.Timestamp(as_of).date()
    written = {}
    con.execute(f"create schema if not exists {schema}")
    con.execute("begin transaction")
    try:
        for name, df in tables.items():
            con.execute(duckdb_ddl(name, schema))
            for col, kind in TABLES[name]:  # tables written by an older version gain new columns
                con.execute(
                    f"alter table {schema}.{name} add column if not exists {col} {_DUCK[kind]}"
                )
            con.execute(f"delete from {schema}.{name} where as_of = ?", [as_of])
            arrow = to_arrow(name, df)
            con.register("_tb_publish", arrow)
            con.execute(f"insert into {schema}.{name} by name select * from _tb_publish")
            con.unregister("_tb_publish")
            written[name] = arrow.num_rows
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return written


def bigquery_schema(name: str):
    from google.cloud import bigquery

    return [bigquery.SchemaField(c, _BQ[k]) for c, k in TABLES[name]]


def publish_bigquery(client, warehouse, tables: dict[str, pd.DataFrame], as_of) -> dict:
    """One WRITE_TRUNCATE Parquet load per table into its ``as_of`` partition."""
    from google.cloud import bigquery

    as_of = pd.Timestamp(as_of)
    dataset = f"{warehouse.project}.{warehouse.schema('marts')}"
    jobs = {}
    for name, df in tables.items():
        buf = io.BytesIO()
        pq.write_table(to_arrow(name, df), buf)
        buf.seek(0)
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            schema=bigquery_schema(name),
            time_partitioning=bigquery.TimePartitioning(
                type_=bigquery.TimePartitioningType.DAY, field="as_of"
            ),
            clustering_fields=["series_level", "metric"],
            create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
            # A table written by an older version gains the new columns (allowed for a
            # WRITE_TRUNCATE load into one partition), as DuckDB's ``add column if not exists``.
            schema_update_options=[bigquery.SchemaUpdateOption.ALLOW_FIELD_ADDITION],
        )
        destination = f"{dataset}.{name}${as_of:%Y%m%d}"
        job = client.load_table_from_file(buf, destination, job_config=config)
        job.result()
        jobs[name] = destination
    return jobs


def empty_like(name: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c, _ in TABLES[name]})


def run_tables(run) -> dict[str, pd.DataFrame]:
    anomalies = run.anomalies if not run.anomalies.empty else empty_like("anomaly_flags")
    return {
        "forecast_daily": run.daily,
        "forecast_monthly": run.monthly,
        "forecast_backtest": run.backtest,
        "anomaly_flags": anomalies,
    }
