"""Redaction of billing free text (descriptions, tags, quarantined raw lines).

Uses ``ingestion.gateway.redact`` (the project's redactor, shared with gateway ingestion). While
that module is not implemented yet (it raises NotImplementedError), a conservative fallback
redacts e-mail addresses, IPv4 addresses, API keys/secrets and long digit runs (card, phone and
account numbers), so PII never lands in the meantime. Billing exports rarely carry PII, but
tags and Azure's owner fields are free text set by people.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# Fallback patterns (RE2 syntax, as DuckDB's regexp functions use).
_FALLBACK: dict[str, str] = {
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    "secret": r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}\b|\bAKIA[0-9A-Z]{16}\b",
    "ip": r"\b(?:\d{1,3}\.){3}\d{1,3}\b",
    "phone": r"\+?\d[\d ()-]{8,}\d",
}


class Redactor(Protocol):
    name: str

    def redact_sql(self, expr: str) -> str: ...

    def count_sql(self, expr: str) -> dict[str, str]: ...


@dataclass(frozen=True)
class GatewayRedactor:
    name: str = "gateway"

    def redact_sql(self, expr: str) -> str:
        from ingestion.gateway.redact import redact_sql

        return redact_sql(expr)

    def count_sql(self, expr: str) -> dict[str, str]:
        from ingestion.gateway.redact import pii_count_sql

        return pii_count_sql(expr)


@dataclass(frozen=True)
class FallbackRedactor:
    name: str = "fallback"

    def redact_sql(self, expr: str) -> str:
        out = expr
        for kind, pattern in _FALLBACK.items():
            out = f"regexp_replace({out}, '{pattern}', '[REDACTED:{kind}]', 'g')"
        return out

    def count_sql(self, expr: str) -> dict[str, str]:
        # Counted on the text as it arrives, kind by kind, in the order redact_sql applies them.
        return {
            kind: f"coalesce(len(regexp_extract_all({expr}, '{pattern}')), 0)"
            for kind, pattern in _FALLBACK.items()
        }


def for_duckdb() -> Redactor:
    """The gateway redactor when it is implemented, else the fallback."""
    try:
        GatewayRedactor().redact_sql("x")
        GatewayRedactor().count_sql("x")
    except (NotImplementedError, ImportError, SyntaxError):
        # Not built yet (or mid-edit in a working tree): never load unredacted text.
        return FallbackRedactor()
    return GatewayRedactor()
