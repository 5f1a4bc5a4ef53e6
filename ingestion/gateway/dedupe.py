"""Each record's load date and final status: quarantined, duplicate or loaded.

- date: ``ctx.date`` is the run's logical date; without it each file is dated by its latest
  valid call timestamp, and files with the same date form one load (``date_files``);
- window: a call outside [load_date - before, load_date + after) is quarantined
  ("out of window");
- dedupe: a repeated ``request_id`` within one load date is a duplicate (first kept, by file
  order given, then line). Only the repeated ids are materialised: they are found on 64-bit
  hashes, then confirmed on the ids, so the wide typed rows are never sorted or copied.

``assign_status`` leaves the view ``_tb_rows``: every typed row with ``load_date``,
``row_status`` and the window's reason added.
"""

from __future__ import annotations

from ingestion.gateway.context import IngestError, LoadContext
from ingestion.raw import guard


def date_files(ctx: LoadContext) -> None:
    """``ctx.file_dates`` (file index -> load date) and the TEMP table ``_tb_dates``."""
    con = ctx.con
    if ctx.date is not None:
        file_dates = {i: ctx.date for i in range(ctx.n)}
    else:
        rows = con.execute(
            """
            select file_idx,
                   max(case when reason is null then t_timestamp end)::DATE,
                   max(t_timestamp)::DATE
            from _tb_typed group by file_idx
            """
        ).fetchall()
        found = {i: valid or anyts for i, valid, anyts in rows}
        file_dates = {}
        for i, name in enumerate(ctx.source_names):
            if found.get(i) is None:
                raise IngestError(_undatable(con, i, name))
            file_dates[i] = found[i]
    ctx.file_dates = file_dates
    con.execute("create or replace temp table _tb_dates (file_idx INTEGER, load_date DATE)")
    con.executemany("insert into _tb_dates values (?, ?)", list(file_dates.items()))


def _undatable(con, idx: int, name: str) -> str:
    """Why file ``idx`` cannot be dated, as advice that helps: an empty file or one with no
    valid record is not fixed by a --date (the load would then be refused as empty);
    only a file whose records are valid but carry no timestamp is."""
    records, invalid = guard.no_valid_rows(con, "_tb_typed", idx, "record")
    if records == 0:
        return f"{name} holds no record (an empty file or only blank lines): nothing to load"
    if invalid:
        return (f"{name} has no valid record ({invalid}): nothing was "
                "loaded. Is it the right file, in a format ingest gateway reads?")
    return (f"{name}: no record with a parseable timestamp, so the file cannot be dated; pass "
            "--date YYYY-MM-DD")


def assign_status(ctx: LoadContext) -> None:
    """Window and duplicates: the view ``_tb_rows`` over ``_tb_typed`` with each row's
    ``load_date``, ``row_status`` and reason (a rule's, or "out of window")."""
    con = ctx.con
    out_of_window = (
        f"(t.reason is null and (t.t_timestamp < d.load_date - interval {int(ctx.window_before)} "
        f"day or t.t_timestamp >= d.load_date + interval {int(ctx.window_after)} day))"
    )
    accepted = f"t.reason is null and not {out_of_window}"
    # Repeated ids are found on 64-bit hashes first (an integer aggregate over every row),
    # then confirmed on the ids themselves among the few rows whose hash repeats.
    con.execute(
        f"""
        create or replace temp table _tb_dups as
        with repeated as (
            select d.load_date, hash(t.request_id) as h
            from _tb_typed t join _tb_dates d using (file_idx)
            where {accepted}
            group by all having count(*) > 1
        )
        select d.load_date, t.request_id,
               min({{'f': t.file_idx, 'l': t.source_line}}) as first_row
        from _tb_typed t join _tb_dates d using (file_idx)
        join repeated r on r.load_date = d.load_date and r.h = hash(t.request_id)
        where {accepted}
        group by all having count(*) > 1
        """
    )
    # the repeated ids' later rows: duplicates (first kept, by file order given, then line)
    con.execute(
        f"""
        create or replace temp table _tb_losers as
        select t.file_idx, t.source_line
        from _tb_typed t join _tb_dates d using (file_idx)
        join _tb_dups x on x.load_date = d.load_date and x.request_id = t.request_id
        where {accepted} and {{'f': t.file_idx, 'l': t.source_line}} <> x.first_row
        """
    )
    con.execute(
        f"""
        create or replace temp view _tb_rows as
        select t.* replace (
                   coalesce(t.reason, case when {out_of_window} then 'out of window' end)
                       as reason),
               d.load_date,
               case when t.reason is not null or {out_of_window} then 'quarantined'
                    when l.file_idx is not null then 'duplicate'
                    else 'loaded' end as row_status
        from _tb_typed t join _tb_dates d using (file_idx)
        left join _tb_losers l using (file_idx, source_line)
        """
    )
