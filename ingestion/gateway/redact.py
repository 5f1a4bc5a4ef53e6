"""PII redaction as DuckDB SQL expressions (owner: redaction). Interface used by the pipeline:

- ``redact_sql(expr: str) -> str``: a DuckDB expression giving ``expr`` (VARCHAR) with every
  PII match replaced by ``[REDACTED:<kind>]``.
- ``pii_count_sql(expr: str) -> dict[str, str]``: per kind in schema.PII_KINDS, an expression
  counting the matches of that kind in ``expr``.
- ``pseudonymise_sql(expr: str, key: str) -> str``: keyed hash of an identifier.
"""

from __future__ import annotations


def redact_sql(expr: str) -> str:
    raise NotImplementedError("redaction is being built")


def pii_count_sql(expr: str) -> dict[str, str]:
    raise NotImplementedError("redaction is being built")


def pseudonymise_sql(expr: str, key: str) -> str:
    raise NotImplementedError("redaction is being built")
