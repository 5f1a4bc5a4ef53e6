"""Great Expectations checkpoints on a just-loaded gateway partition.

GX runs in an ephemeral context on pandas frames taken from DuckDB query results (GX's SQL
datasource cannot read DuckDB here, see STACK_NOTES). Two checkpoints, each run ONCE per
ingestion over all its load dates (a run costs ~0.25 s of GX's Python whatever the size, which
made a 120-day backfill spend a minute in GX); results are split by load date using the
unexpected row indices GX returns:

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
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

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


class _Checkpoints:
    """The GX context, suites and checkpoints, built once per run."""

    def __init__(self, max_share: float) -> None:
        for name in ("great_expectations", "great_expectations.core", "py.warnings"):
            logging.getLogger(name).setLevel(logging.ERROR)
        import great_expectations as gx
        import great_expectations.expectations as gxe
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx = gx.get_context(mode="ephemeral")
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = ctx.data_sources.add_pandas("tokenbook_gateway")
        self.checkpoints = {}
        for asset_name, exps in (
            ("gateway_calls", _call_expectations(gxe)),
            ("gateway_files", _file_expectations(gxe, max_share)),
        ):
            batch = source.add_dataframe_asset(asset_name).add_batch_definition_whole_dataframe(
                "partition"
            )
            suite = ctx.suites.add(gx.ExpectationSuite(name=f"{asset_name}_suite"))
            for e in exps:
                suite.add_expectation(e)
            vd = ctx.validation_definitions.add(
                gx.ValidationDefinition(name=f"{asset_name}_validation", data=batch, suite=suite)
            )
            self.checkpoints[asset_name] = ctx.checkpoints.add(
                gx.Checkpoint(
                    name=f"{asset_name}_checkpoint",
                    validation_definitions=[vd],
                    # COMPLETE gives unexpected row indices, used to split counts by load date;
                    # the unexpected values it also returns are never stored.
                    result_format={"result_format": "COMPLETE"},
                )
            )

    def run(self, asset: str, frame) -> list[Outcome]:
        """One checkpoint run over ``frame`` (all load dates of the run, column load_date);
        one Outcome per expectation per load date, counts split by the unexpected indices."""
        frame = frame.reset_index(drop=True)
        dates = frame["load_date"].to_numpy()
        per_date = Counter(dates.tolist())
        result = self.checkpoints[asset].run(batch_parameters={"dataframe": frame})
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
                index = res.get("unexpected_index_list")
                bad = Counter(dates[list(index)].tolist()) if index else Counter()
                observed = res.get("observed_value")
                for d, rows in sorted(per_date.items()):
                    # no index list (not a row-level expectation): the run's verdict for every date
                    ok = (bad[d] == 0) if index is not None else bool(r.success)
                    outcomes.append(
                        Outcome(
                            load_date=_as_date(d),
                            checkpoint=f"{asset}_checkpoint",
                            data_asset=asset,
                            expectation=cfg.type,
                            column_name=column,
                            parameters=json.dumps(kwargs, sort_keys=True, default=str),
                            success=ok,
                            element_count=rows,
                            unexpected_count=bad[d] if index is not None else res.get(
                                "unexpected_count"),
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
    table = con.sql(sql).to_arrow_table()  # a relation: no extra copy of the rows
    # convert column by column, releasing each Arrow buffer once converted
    return table.to_pandas(split_blocks=True, self_destruct=True)


def fetch_frames(
    con, load_dates: Iterable[date], calls_table: str = "_tb_calls",
    files_table: str = "_tb_files",
):
    """(calls, files) pandas frames of the load dates, only the columns the checkpoints read."""
    dates = ", ".join(f"DATE '{d.isoformat()}'" for d in sorted(set(load_dates))) or "NULL"
    # Through Arrow: DuckDB's .df() peaks at ~4x the frame's size (3.2 GB for 5M calls),
    # Arrow at ~2x; load_date as TIMESTAMP, not millions of Python date objects.
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
    """Run both checkpoints ONCE over all load dates (GX's per-run overhead is ~0.25 s of
    Python); outcomes per date come from the unexpected row indices."""
    result = CheckpointResult()
    if not len(files):
        return result
    cps = _Checkpoints(max_quarantine_share)
    result.outcomes += cps.run("gateway_calls", calls) if len(calls) else []
    result.outcomes += cps.run("gateway_files", files)
    return result


def store_results(con, result: CheckpointResult) -> None:
    """TEMP table ``_tb_validation`` (columns of raw.validation_results) from ``result``."""
    from ingestion.gateway.duckdb_sink import VALIDATION_RESULTS_COLUMNS

    cols = ", ".join(f"{n} {t}" for n, t, _ in VALIDATION_RESULTS_COLUMNS)
    con.execute(f"create or replace temp table {RESULTS_TABLE} ({cols})")
    con.executemany(
        f"insert into {RESULTS_TABLE} values ({', '.join('?' * len(VALIDATION_RESULTS_COLUMNS))})",
        [
            (
                o.load_date, o.checkpoint, o.data_asset, o.expectation, o.column_name,
                o.parameters, o.success, o.element_count, o.unexpected_count, o.observed_value,
            )
            for o in result.outcomes
        ],
    )


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
