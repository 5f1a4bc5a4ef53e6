"""The shrink guard: a load never shrinks what is already loaded by accident.

Every load replaces partitions (a gateway load date, a vendor's billing date or month). A
broken exporter that delivers an empty file, or a file of another vendor whose every line is
quarantined, would replace a day of real rows with nothing. So before anything is published,
each partition the load replaces is compared with what it holds:

- a delivery with **no valid record** (nothing would be loaded) is refused;
- a load that would remove **more than 90%** of a loaded partition's rows (it offers fewer than
  10% of the rows the partition holds) is refused;
- an honest restatement that keeps more than 10% loads as before.

A refusal raises :class:`LoadRefused` naming each partition, the rows it holds, the rows offered
and the flag that confirms a deliberate replacement (``--replace``; ``replace=True`` in Python).
Nothing is published; the loaders append the files to ``raw.load_audit`` with status
``refused`` (the counts are what the delivery held), so a refusal leaves a trace.

The counts of what a partition holds come from the sink (DuckDB: a ``count(*)`` on the
warehouse file; BigQuery: one query job before the WRITE_TRUNCATE load job).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

#: A load offering fewer than this share of a partition's rows removes more than 90%: refused.
MIN_KEPT_SHARE = 0.10
REPLACE_FLAG = "--replace"
#: raw.load_audit.status of a refused load (nothing was published).
REFUSED = "refused"


@dataclass(frozen=True)
class Shrink:
    """One partition a load would shrink: ``held`` rows loaded now, ``offered`` by the load."""

    partition: str  # e.g. "gateway 2026-11-10" or "billing anthropic 2026-11-10"
    held: int
    offered: int

    def sentence(self) -> str:
        if self.offered == 0:
            what = "the delivery has no valid record"
        else:
            removed = 1 - self.offered / self.held
            what = f"it would remove {removed:.1%} of the rows"
        return (f"{self.partition} holds {self.held:,} rows and the load offers "
                f"{self.offered:,} ({what})")


class LoadRefused(Exception):
    """The load was refused before anything was published; the message says what to do.

    Subclasses of each loader's own error class carry this one too (``isinstance`` works for
    both), so callers that catch the loader's errors keep working."""

    def __init__(self, shrinks: list[Shrink], hint: str = "", rows_read: int | None = None
                 ) -> None:
        self.shrinks = shrinks
        self.rows_read = rows_read  # records the delivery held, when the loader counted them
        parts = "; ".join(s.sentence() for s in shrinks)
        super().__init__(
            f"load refused, nothing was changed: {parts}. "
            + (hint + " " if hint else "")
            + f"If this replacement is deliberate, run again with {REPLACE_FLAG}."
        )


def shrinks(partitions: dict[date, int], held: dict[date, int], label: str) -> list[Shrink]:
    """The partitions (load date -> rows offered) a load would shrink by accident, given what
    each holds now (load date -> rows; a date absent holds none). ``label`` names the table
    part of the partition, e.g. ``"gateway"``."""
    out = []
    for d in sorted(partitions):
        offered, now = int(partitions[d]), int(held.get(d, 0))
        if offered == 0 or (now > 0 and offered < MIN_KEPT_SHARE * now):
            out.append(Shrink(f"{label} {d.isoformat()}", now, offered))
    return out


def no_valid_rows(con, table: str, idx: int, what: str) -> tuple[int, str | None]:
    """How many rows file ``idx`` of the typed staging ``table`` holds, and when none of them is
    valid, why (the two commonest rejection reasons, ``what`` naming a row: "record", "line").
    The reason is None when the file has a valid row or no row at all."""
    rows, valid = con.execute(
        f"select count(*), count(*) filter (where reason is null) from {table} "
        "where file_idx = ?", [idx]
    ).fetchone()
    if rows == 0 or valid:
        return rows, None
    top = con.execute(
        f"select reason, count(*) from {table} where file_idx = ? group by reason "
        "order by count(*) desc, reason limit 2", [idx]
    ).fetchall()
    reasons = "; ".join(f"{n:,} {what}(s): {r}" for r, n in top)
    return rows, f"{rows:,} {what}s; {reasons}"
