"""The dbt project follows its own README (dbt_project/README.md, "YAML files: one naming rule"):
YAML named `_<folder>__<kind>.yml`, column types written as a kind of the one type map, every
mart under an enforced contract with every column described. Read from `dbt parse`'s manifest
(no warehouse is touched) and from the files themselves."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from core.settings import load_settings
from tokenbook.dbt import DBT_PROJECT_DIR, run_dbt

KINDS = {"models", "sources", "unit_tests", "metrics", "seeds"}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("dbt_conventions")
    settings = load_settings(warehouse=f"duckdb:///{base / 'wh.duckdb'}")
    run_dbt(["parse"], settings, target_path=base)
    return json.loads((base / "target" / "manifest.json").read_text())


def test_yaml_files_are_named_after_their_folder_and_kind():
    misnamed = []
    for path in sorted(DBT_PROJECT_DIR.glob("models/**/*.yml")) + sorted(DBT_PROJECT_DIR.glob("seeds/*.yml")):
        m = re.fullmatch(r"_([a-z0-9_]+?)__([a-z_]+)\.yml", path.name)
        in_seeds = path.parent.name == "seeds"
        if not m or m.group(2) not in KINDS or (not in_seeds and m.group(1) != path.parent.name) \
                or (in_seeds and m.group(2) != "seeds"):
            misnamed.append(str(path.relative_to(DBT_PROJECT_DIR)))
    assert misnamed == []


def test_column_types_come_from_the_one_type_map():
    # a dialect ternary in a data_type or a seed column type is written nowhere but dbt_project.yml
    inline = []
    for path in sorted(DBT_PROJECT_DIR.glob("models/**/*.yml")) + sorted(DBT_PROJECT_DIR.glob("seeds/*.yml")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if "target.type ==" in line and "schema:" not in line:
                inline.append(f"{path.name}:{n}")
    assert inline == []
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    types = project["vars"]["tb_types"]
    assert set(types["duckdb"]) == set(types["bigquery"])  # every kind typed on both warehouses
    assert types["duckdb"]["money"] == "decimal(38,9)" and types["bigquery"]["money"] == "numeric"


def test_every_mart_has_an_enforced_contract_and_described_columns(manifest):
    marts = [n for n in manifest["nodes"].values()
             if n["resource_type"] == "model" and re.match(r"(mart|fct)_", n["name"])
             and n["original_file_path"].startswith("models/marts/")]
    assert len(marts) >= 20
    assert [n["name"] for n in marts if not n["config"]["contract"]["enforced"]] == []
    undescribed = [f"{n['name']}.{c}" for n in marts for c, col in n["columns"].items()
                   if not (col.get("description") or "").strip()]
    assert undescribed == []
