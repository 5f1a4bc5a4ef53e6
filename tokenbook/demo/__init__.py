"""The demo organisation: a realistic, deterministic company's LLM gateway logs and bills.

``generate(out_dir, days=120, end=date, seed=7, scale=1.0) -> dict`` writes
``out_dir/gateway/gateway-YYYY-MM-DD.jsonl.gz`` (native format, one file per day), the evals and
``out_dir/manifest.json`` (events, counts, PII and dirty-data tallies) and returns the manifest.
``generate_with_billing(...)`` also writes the five vendors' billing exports that match those
calls (with the planted reconciliation gaps) under ``out_dir/billing/`` and records them in the
manifest: this is the whole demo that ``tokenbook demo-data`` and ``make run`` use.
``plan(days, end, seed, scale)`` gives the events and request volume without writing files.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenbook.demo.billing import write_vendor_exports
from tokenbook.demo.generate import generate, plan

__all__ = ["generate", "generate_with_billing", "plan"]


def generate_with_billing(out_dir, days=120, end=None, seed=7, scale=1.0) -> dict:
    """Gateway logs, evals and vendor billing exports; the manifest gains ``billing``."""
    manifest = generate(out_dir, days=days, end=end, seed=seed, scale=scale)
    manifest.update(write_vendor_exports(out_dir, manifest, seed))
    path = Path(out_dir) / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    return manifest
