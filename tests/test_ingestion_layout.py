"""ingestion/ keeps its own house: the pieces every source shares live in ``ingestion/raw/`` and
depend on no source (but the gateway's columns, which its sinks publish), and the sources
(gateway, billing, evals, fx) take what they share from ``raw`` rather than from each other.
Read from the code's imports (lazy ones included) with the import-graph test's reader."""

from __future__ import annotations

from tests.test_import_graph import ROOT, import_graph

SOURCES = ("ingestion.gateway", "ingestion.billing", "ingestion.evals", "ingestion.fx")


def _source_of(module: str) -> str | None:
    return next((s for s in SOURCES if module == s or module.startswith(s + ".")), None)


def test_shared_pieces_depend_on_no_source_but_the_gateway_columns():
    graph = import_graph(ROOT, packages=("core", "ingestion"))
    bad = [
        f"{mod} -> {target}"
        for mod, targets in sorted(graph.items())
        if mod.startswith("ingestion.raw")
        for target in sorted(targets)
        if target.startswith("ingestion.")
        and not target.startswith("ingestion.raw")
        and target != "ingestion.gateway.schema"
    ]
    assert not bad, "ingestion/raw/ reaches into a source:\n" + "\n".join(bad)


def test_sources_share_through_raw_not_through_each_other():
    graph = import_graph(ROOT, packages=("core", "ingestion"))
    bad = [
        f"{mod} -> {target}"
        for mod, targets in sorted(graph.items())
        if _source_of(mod)
        for target in sorted(targets)
        if _source_of(target) and _source_of(target) != _source_of(mod)
    ]
    assert not bad, "a source imports another source (move the shared piece to raw/):\n" + (
        "\n".join(bad)
    )


def test_the_redactor_rules_ship_beside_the_redactor():
    from ingestion.raw import redact

    # package data: hatchling packs every file under ingestion/, so the rules travel with it
    assert redact._RULES_FILE.parent == ROOT / "ingestion" / "raw"
    assert redact._RULES_FILE.is_file()
    assert redact.TOKEN_RULES and redact.CONTEXT_RULES
