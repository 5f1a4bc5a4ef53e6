"""Service tiers as the vendors write them, normalised to one vocabulary at load time.

| logged value (case and spaces ignored) | who writes it | stored as |
|---|---|---|
| ``default``, ``auto``, ``standard``, ``standard_only`` | OpenAI (``default``; ``auto`` is the request's "project default"), Anthropic (``standard`` in ``usage.service_tier``, ``standard_only`` in the request) | ``default`` |
| ``priority`` | OpenAI, Anthropic | ``priority`` |
| ``flex`` | OpenAI | ``flex`` |
| ``scale`` | OpenAI Scale Tier (reserved capacity) | ``scale`` |
| ``batch`` | Anthropic (Message Batches), gateways | ``batch`` |

A value outside this table is loaded as logged (trimmed) and counted in the load report's notes
(``IngestReport.notes``): a new tier must never fail or drop a load. dbt prices ``priority`` and
``flex`` at their own prices, ``batch`` at the batch price, everything else at the standard price.
"""

from __future__ import annotations

# logged value (lower case) -> normalised tier
SERVICE_TIERS: dict[str, str] = {
    "default": "default",
    "auto": "default",
    "standard": "default",
    "standard_only": "default",
    "priority": "priority",
    "flex": "flex",
    "scale": "scale",
    "batch": "batch",
}


def _q(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def normalise_sql(expr: str) -> str:
    """SQL (DuckDB) of the normalised tier of the text ``expr``: a known spelling becomes its
    tier, a blank value NULL, anything else the trimmed value as logged."""
    cases = " ".join(f"when {_q(k)} then {_q(v)}" for k, v in SERVICE_TIERS.items())
    return (
        f"case lower(trim({expr})) {cases} when '' then NULL "
        f"else trim({expr}) end"
    )


def unknown_sql(expr: str) -> str:
    """SQL predicate: ``expr`` holds a tier outside :data:`SERVICE_TIERS` (blank is not)."""
    known = ", ".join(_q(k) for k in SERVICE_TIERS)
    return f"coalesce(lower(trim({expr})) not in ({known}, ''), false)"
