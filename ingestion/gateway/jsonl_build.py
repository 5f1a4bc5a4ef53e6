"""Build the one-pass JSON-lines reader (``_jsonl.c``) next to its source.

    .venv/bin/python -m ingestion.gateway.jsonl_build

``make install`` runs it after the locked environment is synced. It needs a C compiler and
the Python headers (both on the machines the project targets); without them it says so and
exits 0: the gateway reader then reads JSON lines with DuckDB alone (same rows, slower; see
ingestion/README.md).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "_jsonl.c"


def source_sha256() -> str:
    """The hash of ``_jsonl.c`` the library is built from (``_jsonl.source_sha256``): a
    library built from another version of the source is not used (``jsonl_scan``)."""
    return hashlib.sha256(SOURCE.read_bytes()).hexdigest()


def target(folder: Path = HERE) -> Path:
    return Path(folder) / ("_jsonl" + sysconfig.get_config_var("EXT_SUFFIX"))


def build(quiet: bool = False, folder: Path = HERE) -> Path | None:
    """Compile ``_jsonl.c`` into the importable extension in ``folder`` (by default beside
    its source); the path built, or None (and why, on stderr) when no compiler or headers
    are there."""
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    if not shutil.which(cc[0]):
        print(f"jsonl_build: no C compiler ({cc[0]}): JSON lines will be read by DuckDB alone",
              file=sys.stderr)
        return None
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").exists():
        print(f"jsonl_build: no Python headers in {include}: JSON lines will be read by DuckDB "
              "alone", file=sys.stderr)
        return None
    out = target(folder)
    # written beside the target, then renamed: a running process never sees half a library
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".so.tmp")
    os.close(fd)
    cmd = [*cc, "-O2", "-std=c99", "-Wall", "-Werror", "-shared", "-fPIC",
           "-fno-strict-aliasing", f'-DSOURCE_SHA256="{source_sha256()}"', f"-I{include}",
           str(SOURCE), "-o", tmp, "-lm"]
    try:
        subprocess.run(cmd, check=True, capture_output=quiet)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if not quiet:
        print(f"jsonl_build: built {out}")
    return out


if __name__ == "__main__":
    build()
