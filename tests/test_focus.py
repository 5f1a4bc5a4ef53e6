"""`tokenbook export focus` on the demo warehouse, checked by the FinOps Foundation's own
`focus-validator` (FOCUS 1.2.0.1 rules) in its own tool environment.

The validator needs Python >= 3.12 (3.12 here: its pyarrow pin has no 3.13 wheels) and pins numpy < 2 (tools/focus-validator/requirements.txt
adds pyarrow 16.1.0): its virtualenv is built once with uv in `.venv-tools/focus-validator`
(git-ignored) and reused; the tests are skipped, saying why, when Python 3.12 or uv is missing.
A rule counts as failed unless it is an alternative of an OR rule that passed (the validator
lists both branches of an OR, e.g. InvoiceId "MUST be null" / "MUST NOT be null").
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import typer
from test_reconciliation import demo_warehouse
from typer.testing import CliRunner

from tokenbook.commands.export_focus import focus
from tokenbook.focus_export import FOCUS_COLUMNS

REPO = Path(__file__).resolve().parent.parent
TOOL_DIR = REPO / "tools" / "focus-validator"
TOOL_VENV = REPO / ".venv-tools" / "focus-validator"
MONTH = "2026-11"
SUMMARY = re.compile(r"Total: (\d+) \| Pass: (\d+) \| Fail: (\d+) \| Skipped: (\d+)")
FAILED = re.compile(r"^\S+\s+([A-Za-z]+-[A-Z]-\d{3}-[A-Z]): FAIL", re.M)


def _runs(cmd: list[str]) -> bool:
    try:
        return subprocess.run([*cmd, "--version"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _python312() -> str | None:
    """Python 3.12 exactly (pyarrow 16.1.0, which the validator's numpy<2 needs, has no 3.13
    wheels); pyenv shims exist for versions that are not active, so each candidate is run."""
    pattern = os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")
    candidates = sorted(glob.glob(pattern), reverse=True)
    if shutil.which("python3.12"):
        candidates.append(shutil.which("python3.12"))
    return next((c for c in candidates if _runs([c])), None)


def _uv() -> list[str] | None:
    candidates = [[shutil.which("uv")]] if shutil.which("uv") else []
    candidates += [["python3", "-m", "uv"]]
    return next((c for c in candidates if _runs(c)), None)


@pytest.fixture(scope="session")
def validator() -> Path:
    """The focus-validator executable in its own environment (built once)."""
    exe = TOOL_VENV / "bin" / "focus-validator"
    stamp = TOOL_VENV / ".requirements"
    wanted = (TOOL_DIR / "requirements.txt").read_text()
    if exe.exists() and stamp.exists() and stamp.read_text() == wanted:
        return exe
    python, uv = _python312(), _uv()
    if python is None:
        pytest.skip("focus-validator needs Python 3.12 and none was found (python3.12 on "
                    "PATH or ~/.pyenv/versions/3.12*): FOCUS validation skipped")  # fmt: skip
    if uv is None:
        pytest.skip("focus-validator's environment is built with uv, which was not found")
    env = {**os.environ, "UV_COMPILE_BYTECODE": "1"}
    subprocess.run([*uv, "venv", "--quiet", "--python", python, str(TOOL_VENV)], check=True,
                   env=env)  # fmt: skip
    subprocess.run([*uv, "pip", "install", "--quiet", "--python", str(TOOL_VENV / "bin" / "python"),
                    "-r", str(TOOL_DIR / "requirements.txt")], check=True, env=env)  # fmt: skip
    stamp.write_text(wanted)
    return exe


@dataclass
class Validation:
    summary: str
    failed: list[str]  # rules that failed, less the losing branches of passing OR rules
    output: str


def validate(exe: Path, data_file: Path, workdir: Path) -> Validation:
    """Run focus-validator the way STACK_NOTES.md says: from a folder where
    focus_validator/rules/currency_codes.csv resolves (a link to the package), offline."""
    package = next((exe.parent.parent / "lib").glob("python3.*/site-packages/focus_validator"))
    workdir.mkdir(parents=True, exist_ok=True)
    link = workdir / "focus_validator"
    if not link.exists():
        link.symlink_to(package, target_is_directory=True)
    proc = subprocess.run(
        [str(exe), "--data-file", str(data_file), "--validate-version", "1.2.0.1",
         "--block-download"],
        cwd=workdir, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    match = SUMMARY.search(output)
    assert match, (
        f"no summary line from focus-validator (exit {proc.returncode}):\n{output[-3000:]}"
    )
    failed = set(FAILED.findall(output))
    rules = json.loads(next(package.glob("rules/model-*.json")).read_text())["ModelRules"]
    or_children: dict[str, str] = {}
    for rule_id, rule in rules.items():
        req = rule.get("ValidationCriteria", {}).get("Requirement", {})
        if req.get("CheckFunction") == "OR":
            for item in req.get("Items", []):
                if item.get("CheckFunction") == "CheckModelRule":
                    or_children[item["ModelRuleId"]] = rule_id
    real = sorted(r for r in failed if not (r in or_children and or_children[r] not in failed))
    return Validation(summary=match.group(0), failed=real, output=output)


@pytest.fixture(scope="module")
def demo():
    return demo_warehouse(7)


@pytest.fixture(scope="module")
def cli():
    app = typer.Typer()
    app.command()(focus)
    return app


@pytest.fixture(scope="module")
def exported(demo, cli, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("focus") / "exports/"
    res = CliRunner().invoke(cli, ["--month", MONTH, "--out", f"{out}/",
                                   "--warehouse", demo.url])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert f"for {MONTH}" in res.output and "billed" in res.output
    return out / f"focus-{MONTH}.parquet"


def test_export_writes_focus_columns_and_the_month_billed(demo, exported):
    table = pq.read_table(exported)
    assert table.column_names == [name for name, _ in FOCUS_COLUMNS]
    assert table.schema.field("BilledCost").type == pa.decimal128(38, 9)
    assert table.schema.field("ChargePeriodStart").type == pa.timestamp("us", tz="UTC")
    assert set(table.column("ServiceCategory").to_pylist()) == {"AI and Machine Learning"}
    assert set(table.column("ChargeCategory").to_pylist()) == {"Usage"}
    # raw holds the restated Azure load twice; the export holds every line once
    con = demo.connect()
    try:
        billed = con.execute(
            "select sum(billed_cost) from raw.billing_lines where provider is not null and "
            "billing_period = DATE '2026-11-01' and record_type <> 'usage'"
        ).fetchone()[0]
        once = con.execute(
            "select sum(billed_cost) from (select distinct vendor, line_id, billed_cost "
            "from raw.billing_lines where provider is not null and "
            "billing_period = DATE '2026-11-01' and record_type <> 'usage')"
        ).fetchone()[0]
    finally:
        con.close()
    assert billed > once
    assert pc.sum(table.column("BilledCost")).as_py() == once
    tags = [json.loads(t) for t in table.column("Tags").to_pylist()[:500]]
    assert all(set(t) == {"feature", "segment", "team"} for t in tags)
    skus = table.column("SkuId").to_pylist()
    assert all(len(s.split("/")) >= 3 for s in skus)


def test_export_csv_and_clear_errors(demo, cli, tmp_path):
    res = CliRunner().invoke(cli, ["--month", MONTH, "--out", str(tmp_path / "f.csv"),
                                   "--format", "csv", "--warehouse", demo.url])  # fmt: skip
    assert res.exit_code == 0, res.output
    first = (tmp_path / "f.csv").read_text().splitlines()[:2]
    assert first[0].startswith('"BilledCost","EffectiveCost"')
    assert re.search(r'"2026-11-\d\dT00:00:00Z"', first[1])
    res = CliRunner().invoke(cli, ["--month", "2031-01", "--out", str(tmp_path / "x.parquet"),
                                   "--warehouse", demo.url])  # fmt: skip
    assert res.exit_code == 1 and "2026-11" in res.output and "months available" in res.output
    res = CliRunner().invoke(cli, ["--month", "2026-13", "--out", str(tmp_path / "x.parquet"),
                                   "--warehouse", demo.url])  # fmt: skip
    assert res.exit_code == 2 and "YYYY-MM" in res.output  # a bad date is a usage error


def test_focus_validator_passes_the_demo_month(validator, exported, tmp_path):
    result = validate(validator, exported, tmp_path / "run")
    print(f"focus-validator {MONTH}: {result.summary}")
    assert result.failed == [], result.output[-4000:]
    total, passed = (int(x) for x in SUMMARY.search(result.summary).groups()[:2])
    assert passed >= 100 and total > passed


def test_focus_validator_fails_a_broken_file(validator, exported, tmp_path):
    table = pq.read_table(exported)
    # a mandatory column dropped
    dropped = tmp_path / "no-billed-cost.parquet"
    pq.write_table(table.drop_columns(["BilledCost"]), dropped)
    result = validate(validator, dropped, tmp_path / "run1")
    assert "CostAndUsage-D-006-M" in result.failed, result.summary
    # a value outside the spec: a ChargeCategory FOCUS does not know
    i = table.schema.get_field_index("ChargeCategory")
    bad = table.set_column(i, "ChargeCategory", pa.array(["Consumption"] * table.num_rows))
    wrong = tmp_path / "bad-category.parquet"
    pq.write_table(bad, wrong)
    result = validate(validator, wrong, tmp_path / "run2")
    assert any(r.startswith("ChargeCategory-") for r in result.failed), result.summary
