"""Benchmark: how close can a gateway reader come to the bare ``read_json``? Reader designs, each
against the bare read in the same run.

    .venv/bin/python bench/ingest_designs.py --rows 1000000
    .venv/bin/python bench/ingest_designs.py --file F --repeat 3

``bench/ingest.py`` times the real command against the bare read. This one times only the
reading part of alternative designs, so you can see what a redesign would buy before building
it. Each design runs as its own child process (start-up included) on a fresh DuckDB file with
the load's memory limit (2 GB), and the designs alternate with the bare read for ``--repeat``
rounds; the ratios are medians of the per-round ratios against that round's bare read.

- ``bare``: ``create table t as select * from read_json(file, ignore_errors=true)``.
- ``command``: the real ``tokenbook ingest gateway`` (as ``bench/ingest.py`` runs it).
- ``now``: what the load does today, reader part only: the line pass (``native.line_pass``:
  every line's key list, for unknown fields and odd lines), the record pass typed and
  validated (``validate.typed_select``) into a TEMP table, then copied into a table of the
  warehouse (publishing). No dedupe, redaction, counts or audit.
- ``one_write``: the same two passes, the typed rows written once, straight into a table of
  the warehouse (what keeping each load's rows where they were staged would give): the loaded
  rows only, every rule and the PII gate evaluated, as the load must.
- ``records_one_write``: the record pass alone, typed and checked, one write. NOT a valid design (unknown
  fields, a bad line's text and line numbers after a blank line are lost): the lower bound of
  DuckDB's reader with typing.
- ``single_scan``: one scan of the lines, each parsed twice in the same statement
  (``json_keys`` for the unknown fields, ``json_transform`` for the fields), written once.
- ``map_reader``: ``read_json(records=false)`` into ``MAP(VARCHAR, VARCHAR)``: one parse gives
  every key, known or not, and its value, written once.
- ``arrow``: ``pyarrow.json.read_json`` with unknown fields inferred, then written once. It
  cannot skip a bad line (the whole read fails on the first one): timed on a copy of the file
  without its bad lines, and reported as failing on the file itself.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import _BARE, _INGEST, LOAD_DATE, _child, _warm, generate  # noqa: E402  (bench/ingest.py)

_SETUP = """
import sys, duckdb
from pathlib import Path
from ingestion.gateway import native
from ingestion.gateway.schema import NATIVE_FIELDS
from ingestion.gateway.session import setup
from ingestion.gateway.validate import typed_select
path, db = Path(sys.argv[1]), sys.argv[2]
con = duckdb.connect(db)
setup(con)
native._extra_macro(con)
con.execute("set memory_limit = '2GB'")
STAGING = "exclude (raw_line, reason, needs_pii, unparsed, file_idx, source_format)"
# one write: the loaded rows (the rules evaluated: ``where reason is null``) with the PII gate's
# verdict kept (redaction needs it). Excluding ``reason`` and ``needs_pii`` from a design that
# never reads them would let DuckDB skip the rules and the gate (projection pushdown): the
# stop-15 figures for this design (1.30-1.40x) were measured that way and were wrong.
ONE_WRITE = "exclude (raw_line, reason, unparsed, file_idx, source_format)"
def lines():
    source = native._lines_source(path)
    native.line_pass(con, source, native._good_key_hashes(con, source), "lines")
def typed():
    native._records_view(con, path, "records")
    return typed_select("records", "0", repr(str(path)), "native")
"""

DESIGNS: dict[str, str] = {
    "now": """
lines()
con.execute(f"create temp table staged as {typed()}")
con.execute("set preserve_insertion_order = false")
con.execute(f"create table t as select * {STAGING} from staged")
""",
    "one_write": """
lines()
con.execute(f"create table t as select * {ONE_WRITE} from ({typed()}) where reason is null")
""",
    "records_one_write": """
con.execute(f"create table t as select * {ONE_WRITE} from ({typed()}) where reason is null")
""",
    "single_scan": """
spec = "{" + ", ".join(f'"{f}": "VARCHAR"' for f in NATIVE_FIELDS) + "}"
con.execute(f'''
create table t as
select ks, case when ks is not null then json_transform(line, '{spec}') end as s
from (select line, try(json_keys(line)) as ks from ({native._lines_source(path)}))
''')
""",
    "map_reader": """
con.execute(f'''
create table t as select m from read_json('{path}', columns={{'m': 'MAP(VARCHAR, VARCHAR)'}},
    records=false, format='newline_delimited', ignore_errors=true)
''')
""",
    "arrow": """
import pyarrow.json as pj
arrow_table = pj.read_json(str(path), parse_options=pj.ParseOptions(unexpected_field_behavior="infer"))
con.execute("create table t as select * from arrow_table")
""",
}

VERDICT = {
    "command": "the real `tokenbook ingest gateway` (bench/ingest.py's ingest child)",
    "now": "keeps unknown fields, bad lines, line numbers (today's load)",
    "one_write": "keeps all; needs the raw table to be where rows are staged",
    "records_one_write": "NOT valid: loses unknown fields, bad lines' text, line numbers",
    "single_scan": "keeps all; two parses in one scan",
    "map_reader": "keeps all keys; one parse",
    "arrow": "fails on the first bad line; timed on a copy without them",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--file", type=Path, help="use this native JSONL file instead of generating")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", nargs="*", choices=["command", *DESIGNS],
                    help="run these designs only")
    args = ap.parse_args()
    designs = args.only or ["command", *DESIGNS]
    with tempfile.TemporaryDirectory(prefix="tokenbook-designs-") as tmp:
        tmpdir = Path(tmp)
        path = args.file or generate(tmpdir / "gateway.jsonl", args.rows)
        clean = tmpdir / "clean.jsonl"
        if "arrow" in designs:
            # the file without its bad lines (only records whose first key is request_id)
            subprocess.run(f"grep '^{{\"request_id\"' {path} > {clean}", shell=True, check=True)
        _warm(path)
        env = dict(os.environ, TOKENBOOK_PII_KEY="bench-key", COLUMNS="120")
        print(f"{path} ({path.stat().st_size / 1e6:,.0f} MB), {args.repeat} rounds", flush=True)
        runs: dict[str, list[dict]] = {d: [] for d in ["bare", *designs]}
        ratios: dict[str, list[tuple[float, float]]] = {d: [] for d in designs}
        arrow_error = ""
        for k in range(args.repeat):
            bare = _child([sys.executable, "-c", _BARE, str(path), str(tmpdir / "bare.duckdb")])
            runs["bare"].append(bare)
            (tmpdir / "bare.duckdb").unlink()
            line = [f"round {k + 1}: bare {bare['seconds']:.2f} s"]
            for d in designs:
                src = clean if d == "arrow" else path
                db = tmpdir / f"{d}.duckdb"
                if d == "command":
                    run = _child([sys.executable, "-c", _INGEST, "ingest", "gateway", str(path),
                                  "--date", LOAD_DATE.isoformat(), "--warehouse",
                                  f"duckdb:///{db}"], env=env)
                else:
                    run = _child([sys.executable, "-c", _SETUP + DESIGNS[d], str(src), str(db)])
                db.unlink()
                runs[d].append(run)
                ratios[d].append((run["seconds"] / bare["seconds"],
                                  run["cpu_seconds"] / bare["cpu_seconds"]))
                line.append(f"{d} {run['seconds']:.2f} s")
            print(", ".join(line), flush=True)
        if "arrow" in designs:
            try:
                _child([sys.executable, "-c", _SETUP + DESIGNS["arrow"], str(path),
                        str(tmpdir / "arrow_bad.duckdb")])
            except RuntimeError as exc:
                arrow_error = str(exc).strip().splitlines()[-1][:100]

    def med(xs):
        return statistics.median(xs)

    bare_s = med(r["seconds"] for r in runs["bare"])
    bare_cpu = med(r["cpu_seconds"] for r in runs["bare"])
    print(f"\n{'design':<18} {'wall s':>7} {'CPU s':>7} {'x wall':>7} {'x CPU':>7}  what it keeps")
    print(f"{'bare read_json':<18} {bare_s:7.2f} {bare_cpu:7.2f} {1:7.2f} {1:7.2f}")
    for d in designs:
        print(f"{d:<18} {med(r['seconds'] for r in runs[d]):7.2f} "
              f"{med(r['cpu_seconds'] for r in runs[d]):7.2f} "
              f"{med(w for w, _ in ratios[d]):7.2f} {med(c for _, c in ratios[d]):7.2f}  "
              f"{VERDICT[d]}")
    if arrow_error:
        print(f"arrow on the file itself: {arrow_error}")
    print("\nRatios: medians of per-round ratios against that round's bare read. The real "
          "command adds dedupe, redaction, pseudonyms, counts and the audit on top of `now` "
          "(bench/ingest.py times it); target for the command <= 2.0x.")


if __name__ == "__main__":
    main()
