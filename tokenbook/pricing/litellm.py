"""LiteLLM price map (``model_prices_and_context_window.json``) -> price-book rows.

The map gives USD **per token** as JSON numbers (``2.5e-06``). They are parsed straight to
``Decimal`` from the JSON text (never through float) and stored **per million tokens**
(``2.5``): BigQuery NUMERIC keeps 9 decimals, and per-token prices need up to 10.

Every entry billed per token is kept, of every provider and every mode (chat, completion,
responses, embedding, audio, image, rerank... when the map gives per-token prices). Providers
keep LiteLLM's name except openai (+ text-completion-openai), vertex_ai (every vertex_ai-*),
bedrock (+ bedrock_converse), azure_openai (azure) and cohere (+ cohere_chat); Google AI Studio
(``gemini``) stays its own provider, apart from Vertex AI. Catalogue keys lose the routing
prefix LiteLLM adds (``azure/``, ``mistral/``, ``together_ai/``...); for the original five
providers, keys that still hold a ``/`` (regional or commitment variants such as
``bedrock/us-east-1/1-month-commitment/...``) are left out.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

# LiteLLM provider -> (tokenbook provider, preference when two keys give the same model;
# lower wins). Providers not listed keep LiteLLM's name (mistral, deepseek, xai, groq,
# together_ai, fireworks_ai, perplexity, cohere, ...): see canonical_provider().
LITELLM_PROVIDERS: dict[str, tuple[str, int]] = {
    "openai": ("openai", 0),
    "text-completion-openai": ("openai", 1),
    "anthropic": ("anthropic", 0),
    "vertex_ai-language-models": ("vertex_ai", 0),
    "vertex_ai": ("vertex_ai", 1),
    "vertex_ai-anthropic_models": ("vertex_ai", 2),
    # Google AI Studio (Gemini API) is its own billing account: never merged with Vertex AI.
    "gemini": ("gemini", 0),
    "bedrock_converse": ("bedrock", 0),
    "bedrock": ("bedrock", 1),
    "azure": ("azure_openai", 0),
    "azure_text": ("azure_openai", 1),
    "cohere": ("cohere", 0),
    "cohere_chat": ("cohere", 1),
    "fireworks_ai": ("fireworks_ai", 0),
    "fireworks_ai-embedding-models": ("fireworks_ai", 1),
}
# The five providers of the original book: keys that still hold a "/" after the routing prefix
# are regional or commitment variants there (`bedrock/us-east-1/1-month-commitment/...`,
# `azure/eu/gpt-4o`), not per-token list prices, and are left out. Other providers' model ids
# legitimately hold a "/" (`together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo`).
PATH_VARIANT_PROVIDERS = {"openai", "anthropic", "vertex_ai", "bedrock", "azure_openai"}
# Modes billed per token: any mode whose entry has both a per-token input and output price;
# embeddings have no output tokens, so an input price alone prices them (output 0).
INPUT_ONLY_MODES = {"embedding"}
ROUTE_PREFIXES = ("azure/", "vertex_ai/", "gemini/", "bedrock/", "openai/", "anthropic/")


def canonical_provider(litellm_provider: str) -> tuple[str, int]:
    """(tokenbook provider, preference) of a LiteLLM provider name."""
    if litellm_provider in LITELLM_PROVIDERS:
        return LITELLM_PROVIDERS[litellm_provider]
    if litellm_provider.startswith("vertex_ai-"):  # partner models on Vertex AI
        return ("vertex_ai", 3)
    return (litellm_provider.lower(), 0)


# price-book column -> LiteLLM key (USD per token). Every price column is USD per 1M tokens.
PRICE_FIELDS: dict[str, str] = {
    "input_per_mtok": "input_cost_per_token",
    "cache_read_per_mtok": "cache_read_input_token_cost",
    "cache_write_5m_per_mtok": "cache_creation_input_token_cost",
    "cache_write_1h_per_mtok": "cache_creation_input_token_cost_above_1hr",
    "output_per_mtok": "output_cost_per_token",
    "batch_input_per_mtok": "input_cost_per_token_batches",
    "batch_output_per_mtok": "output_cost_per_token_batches",
    "batch_cache_read_per_mtok": "cache_read_input_token_cost_batches",
    "batch_cache_write_per_mtok": "cache_creation_input_token_cost_batches",
    "priority_input_per_mtok": "input_cost_per_token_priority",
    "priority_output_per_mtok": "output_cost_per_token_priority",
    "priority_cache_read_per_mtok": "cache_read_input_token_cost_priority",
    "flex_input_per_mtok": "input_cost_per_token_flex",
    "flex_output_per_mtok": "output_cost_per_token_flex",
    "flex_cache_read_per_mtok": "cache_read_input_token_cost_flex",
}
# Above-context-tier prices: LiteLLM writes `<field>_above_<N>k_tokens`; the lowest N with an
# input price is the tier (N x 1000 input tokens, cache tokens included).
TIER_FIELDS: dict[str, str] = {
    "tier_input_per_mtok": "input_cost_per_token",
    "tier_cache_read_per_mtok": "cache_read_input_token_cost",
    "tier_cache_write_5m_per_mtok": "cache_creation_input_token_cost",
    "tier_cache_write_1h_per_mtok": "cache_creation_input_token_cost_above_1hr",
    "tier_output_per_mtok": "output_cost_per_token",
}
# Above-tier prices of the other service modes, where the map has them
# (`input_cost_per_token_above_200k_tokens_priority`, ..._batches, ..._flex).
TIER_MODE_FIELDS: dict[str, tuple[str, str]] = {
    "tier_batch_input_per_mtok": ("input_cost_per_token", "batches"),
    "tier_batch_output_per_mtok": ("output_cost_per_token", "batches"),
    "tier_priority_input_per_mtok": ("input_cost_per_token", "priority"),
    "tier_priority_cache_read_per_mtok": ("cache_read_input_token_cost", "priority"),
    "tier_priority_output_per_mtok": ("output_cost_per_token", "priority"),
    "tier_flex_input_per_mtok": ("input_cost_per_token", "flex"),
    "tier_flex_output_per_mtok": ("output_cost_per_token", "flex"),
}
TIERS_K = (32, 100, 128, 200, 256, 272, 512)

COLUMNS: tuple[str, ...] = (
    "provider",
    "model",
    "valid_from",
    *PRICE_FIELDS,
    "tier_threshold_tokens",
    *TIER_FIELDS,
    *TIER_MODE_FIELDS,
    "request_fee_usd",
    "litellm_key",
    "litellm_provider",
    "source_snapshot",
)
PRICE_COLUMNS: tuple[str, ...] = (
    *PRICE_FIELDS,
    "tier_threshold_tokens",
    *TIER_FIELDS,
    *TIER_MODE_FIELDS,
    "request_fee_usd",
)

# The default book is taken as in force since before any call we hold.
DEFAULT_VALID_FROM = "2000-01-01"
SCALE = Decimal("0.000000001")


class PriceMapError(ValueError):
    """The price map cannot be read or holds a price we cannot store exactly."""


def load_price_map(path: str | Path) -> dict[str, dict]:
    """Read a LiteLLM price map (``.json`` or ``.json.gz``), numbers as exact Decimals."""
    path = Path(path)
    if not path.exists():
        raise PriceMapError(f"price map {path} does not exist")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            data = json.load(fh, parse_float=Decimal)
    except (OSError, json.JSONDecodeError) as exc:
        raise PriceMapError(
            f"{path} is not a LiteLLM price map (model_prices_and_context_window.json): {exc}"
        ) from exc
    if not isinstance(data, dict) or not any(
        isinstance(v, dict) and "litellm_provider" in v for v in data.values()
    ):
        raise PriceMapError(
            f"{path} has no entries with 'litellm_provider': expected LiteLLM's "
            "model_prices_and_context_window.json format"
        )
    return data


def is_priced_per_token(entry: object) -> bool:
    """An entry billed per token: input and output prices per token (any mode: chat,
    completion, responses, embedding, audio, image, rerank...), or an embedding's input price."""
    if not isinstance(entry, dict) or not isinstance(entry.get("litellm_provider"), str):
        return False
    if not _is_number(entry.get("input_cost_per_token")):
        return False
    return _is_number(entry.get("output_cost_per_token")) or entry.get("mode") in INPUT_ONLY_MODES


def _is_number(value: object) -> bool:
    return isinstance(value, (Decimal, int, float)) and not isinstance(value, bool)


def select_entries(price_map: dict[str, dict]) -> dict[str, dict]:
    """The entries tokenbook prices (every provider, every mode billed per token), untouched."""
    return {
        key: entry
        for key, entry in price_map.items()
        if key != "sample_spec" and is_priced_per_token(entry)  # sample_spec documents the schema
    }


def _per_million(value: object, key: str, field: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise PriceMapError(f"{key}.{field} is {value!r}, expected a number")
    per_m = (Decimal(value) * 1_000_000).normalize()
    if per_m.quantize(SCALE) != per_m:
        raise PriceMapError(
            f"{key}.{field} = {value} needs more than 9 decimals per million tokens; "
            "it cannot be stored exactly as NUMERIC"
        )
    return per_m.quantize(SCALE).normalize()


def catalogue_model(key: str, litellm_provider: str | None = None) -> str | None:
    """Catalogue key of a LiteLLM key: routing prefix (``azure/``, ``mistral/``, the entry's own
    provider name) removed, lower case; None if still a path for the original five providers
    (regional / commitment variants)."""
    model = key
    own = f"{litellm_provider}/" if litellm_provider else None
    if own and model.startswith(own):
        model = model[len(own) :]
    else:
        for prefix in ROUTE_PREFIXES:
            if model.startswith(prefix):
                model = model[len(prefix) :]
                break
    provider = canonical_provider(litellm_provider)[0] if litellm_provider else None
    if "/" in model and (provider is None or provider in PATH_VARIANT_PROVIDERS):
        return None
    return model.lower()


def to_price_rows(
    price_map: dict[str, dict], source_snapshot: str, valid_from: str = DEFAULT_VALID_FROM
) -> list[dict[str, object]]:
    """One price-book row per (provider, model), sorted; prices are Decimal per 1M tokens."""
    chosen: dict[tuple[str, str], tuple[tuple[int, int, str], dict[str, object]]] = {}
    for key, entry in select_entries(price_map).items():
        model = catalogue_model(key, entry["litellm_provider"])
        if model is None:
            continue
        provider, rank = canonical_provider(entry["litellm_provider"])
        try:
            row = _price_row(key, entry, provider, model, valid_from)
        except PriceMapError:
            if provider in PATH_VARIANT_PROVIDERS:
                raise
            # A float artefact in another provider's entry (0.0000029999900000000002 per token)
            # cannot be stored exactly: left out (its calls stay unpriced and are listed in
            # mart_unpriced_calls), never rounded. inexact_entries() lists them.
            continue
        row["litellm_key"] = key
        row["litellm_provider"] = entry["litellm_provider"]
        row["source_snapshot"] = source_snapshot
        # Prefer the provider's own listing, then the key without a routing prefix.
        preference = (rank, 0 if key.lower() == model else 1, key)
        current = chosen.get((provider, model))
        if current is None or preference < current[0]:
            chosen[(provider, model)] = (preference, row)
    return [chosen[k][1] for k in sorted(chosen)]


def inexact_entries(price_map: dict[str, dict]) -> list[str]:
    """Keys billed per token whose prices do not fit 9 decimals per 1M tokens (left out)."""
    out = []
    for key, entry in select_entries(price_map).items():
        model = catalogue_model(key, entry["litellm_provider"])
        if model is None:
            continue
        try:
            _price_row(key, entry, *canonical_provider(entry["litellm_provider"])[:1], model, "")
        except PriceMapError:
            out.append(key)
    return sorted(out)


def _price_row(
    key: str, entry: dict, provider: str, model: str, valid_from: str
) -> dict[str, object]:
    """The price columns of one entry (USD per 1M tokens); raises PriceMapError when inexact."""
    row: dict[str, object] = {"provider": provider, "model": model, "valid_from": valid_from}
    for col, field in PRICE_FIELDS.items():
        row[col] = _per_million(entry.get(field), key, field)
    if row["output_per_mtok"] is None:  # an embedding: no output tokens to bill
        row["output_per_mtok"] = Decimal(0)
    threshold = next(
        (k for k in TIERS_K if f"input_cost_per_token_above_{k}k_tokens" in entry), None
    )
    row["tier_threshold_tokens"] = threshold * 1000 if threshold else None
    for col, field in TIER_FIELDS.items():
        value = entry.get(f"{field}_above_{threshold}k_tokens") if threshold else None
        row[col] = _per_million(value, key, field)
    for col, (field, mode) in TIER_MODE_FIELDS.items():
        value = entry.get(f"{field}_above_{threshold}k_tokens_{mode}") if threshold else None
        row[col] = _per_million(value, key, f"{field}_above_{threshold}k_tokens_{mode}")
    fee = entry.get("input_cost_per_request")
    row["request_fee_usd"] = Decimal(fee).normalize() if _is_number(fee) else None
    return row


def format_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text
    return str(value)


def write_csv(rows: Iterable[dict[str, object]], path: str | Path) -> int:
    """Write price rows as the dbt seed CSV (decimals in plain notation). Returns rows written."""
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([format_value(row.get(c)) for c in COLUMNS])
            n += 1
    return n
