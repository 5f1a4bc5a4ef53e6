"""`tokenbook demo-data`: write the demo organisation (owner: demo generator)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from tokenbook.commands.common import DEMO_MIN_DAYS, fail


def demo_data(
    end: Annotated[
        datetime,
        typer.Option("--end", formats=["%Y-%m-%d"], metavar="YYYY-MM-DD", help="Last day of the demo period (UTC)."),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Folder to write gateway/*.jsonl.gz and manifest.json.")
    ],
    days: Annotated[
        int, typer.Option("--days", min=DEMO_MIN_DAYS, help="Number of days, ending at --end.")
    ] = 120,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed: another seed moves every planted event.")
    ] = 7,
    scale: Annotated[
        float,
        typer.Option("--scale", min=0.001, help="Volume multiplier: 1.0 is about 4,700 calls a day."),
    ] = 1.0,
) -> None:
    """Write a realistic, deterministic demo company's gateway logs (one gzip JSONL file per day)
    with planted events (launch, runaway day, prompt growth, model switch, new feature, degraded
    provider), PII in free-text fields and dirty lines, plus the five vendors' matching billing
    exports with planted reconciliation gaps; the manifest lists them all."""
    from tokenbook.demo import generate_with_billing

    try:
        manifest = generate_with_billing(out, days=days, end=end.date(), seed=seed, scale=scale)
    except (ValueError, OSError) as exc:
        raise fail(f"demo-data: {exc}") from exc
    ev = manifest["events"]
    typer.echo(
        f"wrote {len(manifest['files'])} files to {out / 'gateway'} "
        f"({manifest['start']} .. {manifest['end']}, seed {seed}, scale {scale})"
    )
    typer.echo(
        f"calls: {manifest['calls']:,} attempts, {manifest['logical_requests']:,} logical requests; "
        f"lines: {manifest['expected']['rows_read']:,} "
        f"({manifest['bad_lines']['total']} bad, {manifest['duplicates']['same_file']} + "
        f"{manifest['duplicates']['next_file']} duplicates, "
        f"{manifest['late_records']['out_of_window']} out of window)"
    )
    typer.echo(f"PII planted: {manifest['pii']['total']:,}; untagged share "
               f"{manifest['untagged_share']:.1%}")
    typer.echo("planted events:")
    for name, e in ev.items():
        where = e.get("feature") or e.get("provider")
        when = e.get("date") or e.get("start_date")
        extra = f" ({e['model']})" if name == "runaway_day" else ""
        if name == "model_switch":
            extra = f" ({e['from_model']} -> {e['to_model']})"
        typer.echo(f"  {name:<14} {when}  {where}{extra}")
    gaps = manifest.get("billing", {}).get("gaps", {})
    typer.echo(f"vendor billing exports in {out / 'billing'}; planted gaps: "
               + (", ".join(sorted(gaps)) if gaps else "none"))
    typer.echo(f"manifest: {out / 'manifest.json'}")
