"""The default price book shipped with tokenbook.

``data/litellm_snapshot.json.gz`` holds the priced entries of a LiteLLM price map, values
untouched (see ``data/README.md`` for provenance and ``data/LICENSE`` for its MIT license).
``dbt_project/seeds/price_book_default.csv`` and ``ingestion/gateway/litellm_bare_models.csv``
(the provider LiteLLM routes a model name without a ``provider/`` prefix to, which the LiteLLM
spend-log reader falls back on) are generated from it; regenerate them with::

    python -m tokenbook.pricing.default /path/to/model_prices_and_context_window.json "litellm==X.Y.Z ..."
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from decimal import Decimal
from pathlib import Path

from core.settings import project_root
from tokenbook.pricing.litellm import load_price_map, select_entries, to_price_rows, write_csv

DATA_DIR = Path(__file__).resolve().parent / "data"
SNAPSHOT_PATH = DATA_DIR / "litellm_snapshot.json.gz"
SNAPSHOT_SOURCE_PATH = DATA_DIR / "SOURCE"
SEED_PATH = project_root() / "dbt_project" / "seeds" / "price_book_default.csv"
BARE_MODELS_PATH = Path(__file__).resolve().parents[2] / "ingestion" / "gateway" / "litellm_bare_models.csv"


def snapshot_source() -> str:
    return SNAPSHOT_SOURCE_PATH.read_text(encoding="utf-8").strip()


def default_rows() -> list[dict[str, object]]:
    """Price rows of the shipped snapshot."""
    return to_price_rows(load_price_map(SNAPSHOT_PATH), source_snapshot=snapshot_source())


def build(src: str | Path, source: str) -> tuple[int, int]:
    """Filter ``src`` into the shipped snapshot and regenerate the seed. Returns
    (entries kept, seed rows)."""
    entries = select_entries(load_price_map(src))
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    # LiteLLM writes its map with Python's json (shortest float repr), so float -> repr
    # gives back the same text; checked exactly below before anything is written.
    text = json.dumps(_decimals_to_float(entries), indent=1, sort_keys=True)
    if json.loads(text, parse_float=Decimal) != entries:
        raise ValueError("snapshot would not round-trip exactly; refusing to write it")
    with (
        open(SNAPSHOT_PATH, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz,
    ):
        gz.write(text.encode("utf-8"))
    SNAPSHOT_SOURCE_PATH.write_text(source.strip() + "\n", encoding="utf-8")
    rows = default_rows()
    n = write_csv(rows, SEED_PATH)
    write_bare_models(rows, BARE_MODELS_PATH)
    return len(entries), n


def bare_models(rows: list[dict[str, object]]) -> list[tuple[str, str, str]]:
    """(model, provider, source_snapshot) for every key of the map without a ``provider/``
    prefix: LiteLLM resolves such a bare model name (``gpt-5-mini``, ``claude-sonnet-4-5``) to
    that entry's provider. Sorted; one provider per model (the map has one entry per key)."""
    out = {
        str(r["litellm_key"]): (str(r["provider"]), str(r["source_snapshot"]))
        for r in rows
        if "/" not in str(r["litellm_key"])
    }
    return sorted((model, prov, src) for model, (prov, src) in out.items())


def write_bare_models(rows: list[dict[str, object]], path: str | Path) -> int:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("model", "provider", "source_snapshot"))
        found = bare_models(rows)
        writer.writerows(found)
    return len(found)


def _decimals_to_float(obj: object) -> object:
    if isinstance(obj, dict):
        return {k: _decimals_to_float(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decimals_to_float(v) for v in obj]
    if isinstance(obj, Decimal):
        return float(obj)
    return obj


if __name__ == "__main__":  # pragma: no cover - maintenance script
    kept, rows = build(sys.argv[1], sys.argv[2])
    print(f"kept {kept} entries; wrote {rows} price rows to {SEED_PATH}")
