"""The demo organisation: a realistic, deterministic company's LLM gateway logs.

``generate(out_dir, days=120, end=date, seed=7, scale=1.0) -> dict`` writes
``out_dir/gateway/gateway-YYYY-MM-DD.jsonl.gz`` (native format, one file per day) and
``out_dir/manifest.json`` (events, counts, PII and dirty-data tallies) and returns the manifest.
``plan(days, end, seed, scale)`` gives the events and request volume without writing files.
"""

from tokenbook.demo.generate import generate, plan

__all__ = ["generate", "plan"]
