"""The ground every part of tokenbook stands on: settings, the warehouse (one URL parse, one
way to get a DuckDB connection or a BigQuery client) and small query helpers.

``core`` imports nothing from ``ingestion``, ``forecasting``, ``tokenbook`` or ``dags``; they
all import it (tests/test_import_graph.py holds the rule).
"""
