"""Great Expectations checkpoints on a just-loaded gateway partition.

GX runs in an ephemeral context on pandas frames taken from DuckDB query results (GX's SQL
datasource cannot read DuckDB here, see STACK_NOTES). Two checkpoints, each run ONCE per
ingestion over all its load dates (a run costs ~0.25 s of GX's Python whatever the size, which
made a 120-day backfill spend a minute in GX). A run over one load date asks GX for exact
counts only (result format BASIC); over several, for the unexpected row indices too
(COMPLETE), which split the counts by load date:

``gateway_calls`` (the partition's rows of raw.gateway_calls, only the columns checked):
  request_id (as a 63-bit hash), call_ts, provider, model, input_tokens, output_tokens not
  null; (load_date, request_id hash) unique; token counts >= 0; input_tokens >= cache read + cache write tokens;
  service_tier in {default, priority, flex, batch}; cache_write_ttl in {5m, 1h};
  quality_score between 0 and 1 (nulls are ignored by GX's column expectations).
  ``status`` is open-ended in the native format, so it is not checked against a set.
``gateway_files`` (one row per file of the load):
  rows read = loaded + quarantined + duplicates (``rows_unaccounted`` = 0), and the file's
  quarantine share <= ``max_quarantine_share`` (default 5%).

Results land in TEMP table ``_tb_validation`` of the staging connection, one row per
expectation per load date, with the expectation's parameters and counts only: never the
unexpected values themselves, so no PII can reach raw.validation_results.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from ingestion.gx_import import import_gx

MAX_QUARANTINE_SHARE = 0.05
RESULTS_TABLE = "_tb_validation"

# request_id travels as a 63-bit hash: GX's uniqueness check on millions of Python strings
# took ~1.7 GB at 5M calls; on integers it is a fraction. A false duplicate needs a 63-bit
# collision within one load date (~1e-6 at 5M ids).
_CALL_COLUMNS = (
    "case when request_id is not null then (hash(request_id) >> 1)::BIGINT end "
    "as request_id_hash, call_ts, provider, model, input_tokens, output_tokens, "
    "cache_read_input_tokens, cache_write_input_tokens, reasoning_tokens, "
    "coalesce(cache_read_input_tokens, 0) + coalesce(cache_write_input_tokens, 0) "
    "as cache_input_tokens, service_tier, cache_write_ttl, quality_score"
)


@dataclass(frozen=True)
class Outcome:
    load_date: date
    checkpoint: str
    data_asset: str
    expectation: str
    column_name: str | None
    parameters: str
    success: bool
    element_count: int | None
    unexpected_count: int | None
    observed_value: str | None


@dataclass
class CheckpointResult:
    outcomes: list[Outcome] = field(default_factory=list)
    table: str = RESULTS_TABLE

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success]

    def failure_lines(self) -> list[str]:
        return [
            f"{o.load_date}: {o.data_asset} {o.expectation}"
            + (f"({o.column_name})" if o.column_name else "")
            + (f" unexpected={o.unexpected_count}" if o.unexpected_count else "")
            + (f" observed={o.observed_value}" if o.observed_value is not None else "")
            for o in self.failures()
        ]


def _call_expectations(gxe) -> list:
    tokens = (
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_write_input_tokens",
        "reasoning_tokens",
    )
    exps = [
        gxe.ExpectColumnValuesToNotBeNull(column=c)
        for c in ("request_id_hash", "call_ts", "provider", "model", "input_tokens",
                  "output_tokens")
    ]
    # unique within a load date (the same id in another load is a late re-send, not an error)
    exps.append(
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["load_date", "request_id_hash"])
    )
    exps += [gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0) for c in tokens]
    exps.append(
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="input_tokens", column_B="cache_input_tokens", or_equal=True
        )
    )
    exps.append(
        gxe.ExpectColumnValuesToBeInSet(
            column="service_tier", value_set=["default", "priority", "flex", "batch"]
        )
    )
    exps.append(gxe.ExpectColumnValuesToBeInSet(column="cache_write_ttl", value_set=["5m", "1h"]))
    exps.append(
        gxe.ExpectColumnValuesToBeBetween(column="quality_score", min_value=0, max_value=1)
    )
    return exps


def _file_expectations(gxe, max_share: float) -> list:
    return [
        gxe.ExpectColumnValuesToBeBetween(column="rows_unaccounted", min_value=0, max_value=0),
        gxe.ExpectColumnValuesToBeBetween(
            column="quarantine_share", min_value=0, max_value=max_share
        ),
    ]


# Checkpoint result formats. Both leave out the unexpected values (never stored: PII) and the
# "unexpected index query" (a string of every unexpected index, rebuilt with one more pass
# over the frame per expectation).
# - one load date: BASIC, whose unexpected_count and success are exact (counted over the
#   whole column) and which skips the two passes that collect the unexpected row indices;
# - several load dates: COMPLETE, the unexpected row indices splitting the counts by date.
_ONE_DATE_FORMAT = {
    "result_format": "BASIC",
    "exclude_unexpected_values": True,
    "return_unexpected_index_query": False,
}
_MANY_DATES_FORMAT = {
    "result_format": "COMPLETE",
    "exclude_unexpected_values": True,
    "return_unexpected_index_query": False,
}


class _Checkpoints:
    """The GX context, suites, validation definitions and checkpoints, built once per run."""

    def __init__(self, max_share: float) -> None:
        for name in ("great_expectations", "great_expectations.core", "py.warnings"):
            logging.getLogger(name).setLevel(logging.ERROR)
        gx = import_gx()
        import great_expectations.expectations as gxe
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self._gx = gx
        self.ctx = ctx = gx.get_context(mode="ephemeral")
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = ctx.data_sources.add_pandas("tokenbook_gateway")
        self.validations = {}
        self.checkpoints = {}
        for asset_name, exps in (
            ("gateway_calls", _call_expectations(gxe)),
            ("gateway_files", _file_expectations(gxe, max_share)),
        ):
            batch = source.add_dataframe_asset(asset_name).add_batch_definition_whole_dataframe(
                "partition"
            )
            # all expectations at once: add_expectation re-serialises the whole suite each time
            suite = ctx.suites.add(
                gx.ExpectationSuite(name=f"{asset_name}_suite", expectations=exps)
            )
            self.validations[asset_name] = ctx.validation_definitions.add(
                gx.ValidationDefinition(name=f"{asset_name}_validation", data=batch, suite=suite)
            )

    def _checkpoint(self, asset: str, many_dates: bool):
        """The asset's checkpoint, with the result format the number of load dates needs."""
        key = (asset, many_dates)
        if key not in self.checkpoints:
            self.checkpoints[key] = self.ctx.checkpoints.add(
                self._gx.Checkpoint(
                    name=f"{asset}_checkpoint" + ("_by_date" if many_dates else ""),
                    validation_definitions=[self.validations[asset]],
                    result_format=dict(_MANY_DATES_FORMAT if many_dates else _ONE_DATE_FORMAT),
                )
            )
        return self.checkpoints[key]

    def run(self, asset: str, frame) -> list[Outcome]:
        """One checkpoint run over ``frame`` (all load dates of the run, column load_date);
        one Outcome per expectation per load date, counts split by the unexpected indices
        when the frame holds several dates."""
        import numpy as np
        import pandas as pd

        if not isinstance(frame.index, pd.RangeIndex) or frame.index.start != 0 or (
            frame.index.step != 1
        ):
            frame = frame.reset_index(drop=True)  # unexpected indices are row positions
        # codes: position of each row's date in `days` (a Categorical column: its codes)
        codes, days = pd.factorize(frame["load_date"], sort=True)
        codes = np.asarray(codes)
        per_date = np.bincount(codes, minlength=len(days)).tolist()
        days = [_as_date(d) for d in days]
        many = len(days) > 1
        result = self._checkpoint(asset, many).run(batch_parameters={"dataframe": frame})
        outcomes = []
        for vr in result.run_results.values():
            for r in vr.results:
                cfg = r.expectation_config
                kwargs = {
                    k: v for k, v in dict(cfg.kwargs).items() if k not in {"batch_id", "result_format"}
                }
                if "column" in kwargs:
                    column = kwargs["column"]
                elif "column_A" in kwargs:
                    column = f"{kwargs['column_A']},{kwargs['column_B']}"
                else:
                    column = ",".join(kwargs.get("column_list", [])) or None
                res = r.result or {}
                index = res.get("unexpected_index_list") if many else None
                if index is not None:
                    bad = np.bincount(
                        codes[np.asarray(index, dtype=np.intp)], minlength=len(days)
                    ).tolist()
                observed = res.get("observed_value")
                for k, d in enumerate(days):
                    if index is not None:
                        ok, unexpected = bad[k] == 0, bad[k]
                    else:
                        # one date (exact unexpected_count of the whole run), or not a
                        # row-level expectation: the run's verdict for every date
                        ok, unexpected = bool(r.success), res.get("unexpected_count")
                    outcomes.append(
                        Outcome(
                            load_date=d,
                            checkpoint=f"{asset}_checkpoint",
                            data_asset=asset,
                            expectation=cfg.type,
                            column_name=column,
                            parameters=json.dumps(kwargs, sort_keys=True, default=str),
                            success=ok,
                            element_count=per_date[k],
                            unexpected_count=unexpected,
                            observed_value=None if observed is None else str(observed),
                        )
                    )
        return outcomes


def _as_date(value) -> date:
    if isinstance(value, date) and not hasattr(value, "hour"):
        return value
    import pandas as pd

    return pd.Timestamp(value).date()


def _frame(con, sql: str):
    """The query's rows as a pandas frame, through Arrow, shaped for GX's pandas engine.

    GX copies the WHOLE frame once per metric of an expectation on a column holding NULLs
    (``df[df[col].notnull()]``), and hashes it once per run, so the frame's layout is most of
    the checkpoint's cost:
    - strings and load_date arrive dictionary-encoded, as pandas Categoricals: a copy moves
      1-byte codes instead of Arrow strings (whose take concatenates every chunk) or 8-byte
      timestamps. Exact: same values and NULLs; notnull, isin and duplicated answer the same;
    - columns consolidated into one 2-D block per dtype: a copy is one take per block, not
      one per column (~40% cheaper);
    - numbers keep DuckDB's int64 / float64 (float64 when a column holds NULLs, exact below
      2**53): GX's between check is vectorised only for those dtypes, int32 or nullable Int64
      would send every value through a Python function.
    """
    import pyarrow.compute as pc

    table = con.sql(sql).to_arrow_table()  # a relation: no extra copy of the rows
    if "load_date" in table.column_names:
        i = table.column_names.index("load_date")
        table = table.set_column(i, "load_date", pc.dictionary_encode(table.column(i)))
    # self_destruct releases each Arrow column once converted
    return table.to_pandas(self_destruct=True, strings_to_categorical=True)


def fetch_frames(
    con, load_dates: Iterable[date], calls_table: str = "_tb_calls",
    files_table: str = "_tb_files",
):
    """(calls, files) pandas frames of the load dates, only the columns the checkpoints read
    (strings and load_date as Categoricals, see ``_frame``)."""
    dates = ", ".join(f"DATE '{d.isoformat()}'" for d in sorted(set(load_dates))) or "NULL"
    # Through Arrow: DuckDB's .df() peaks at ~4x the frame's size (3.2 GB for 5M calls),
    # Arrow at ~2x; load_date as TIMESTAMP (then a Categorical), not Python date objects.
    calls = _frame(
        con,
        f"select load_date::TIMESTAMP as load_date, {_CALL_COLUMNS} from {calls_table} "
        f"where load_date in ({dates})",
    )
    files = _frame(
        con,
        f"""select load_date::TIMESTAMP as load_date, file_idx, rows_read,
                   rows_read - rows_loaded - rows_quarantined - rows_duplicate
                       as rows_unaccounted,
                   case when rows_read = 0 then 0.0
                        else rows_quarantined / rows_read end as quarantine_share
            from {files_table} where load_date in ({dates})""",
    )
    return calls, files


def check_frames(calls, files, max_quarantine_share: float = MAX_QUARANTINE_SHARE):
    """Run both checkpoints ONCE over all load dates (GX's per-run overhead is ~0.2 s of
    Python); with several dates, outcomes per date come from the unexpected row indices."""
    result = CheckpointResult()
    if not len(files):
        return result
    cps = _Checkpoints(max_quarantine_share)
    result.outcomes += cps.run("gateway_calls", calls) if len(calls) else []
    result.outcomes += cps.run("gateway_files", files)
    return result


def store_results(con, result: CheckpointResult) -> None:
    """TEMP table ``_tb_validation`` (columns of raw.validation_results) from ``result``."""
    import pyarrow as pa

    from ingestion.gateway.schema import VALIDATION_RESULTS_COLUMNS

    cols = ", ".join(f"{n} {t}" for n, t, _ in VALIDATION_RESULTS_COLUMNS)
    con.execute(f"create or replace temp table {RESULTS_TABLE} ({cols})")
    if not result.outcomes:
        return
    rows = [
        (
            o.load_date, o.checkpoint, o.data_asset, o.expectation, o.column_name,
            o.parameters, o.success, o.element_count, o.unexpected_count, o.observed_value,
        )
        for o in result.outcomes
    ]
    # One Arrow insert: executemany costs ~0.7 ms a row (1.6 s for a 120-day backfill's
    # 2,160 rows); columns in the table's order, DuckDB casting each to its type.
    arrow_types = {"DATE": pa.date32(), "VARCHAR": pa.string(), "BOOLEAN": pa.bool_(),
                   "BIGINT": pa.int64()}
    columns = zip(*rows, strict=True)  # rows -> columns
    table = pa.table(
        {
            name: pa.array(values, type=arrow_types.get(ddb))
            for (name, ddb, _), values in zip(VALIDATION_RESULTS_COLUMNS, columns, strict=True)
        }
    )
    con.from_arrow(table).insert_into(RESULTS_TABLE)


def run_gateway_checkpoint(
    con,
    load_dates: Iterable[date],
    calls_table: str = "_tb_calls",
    files_table: str = "_tb_files",
    max_quarantine_share: float = MAX_QUARANTINE_SHARE,
) -> CheckpointResult:
    """fetch_frames + check_frames + store_results over the staged tables read through
    ``con``."""
    calls, files = fetch_frames(con, load_dates, calls_table, files_table)
    result = check_frames(calls, files, max_quarantine_share)
    store_results(con, result)
    return result
