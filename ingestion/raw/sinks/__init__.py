"""Where staged rows are published: a DuckDB warehouse file (duckdb.py) or BigQuery load jobs
(bigquery.py; google libraries are imported on use)."""
