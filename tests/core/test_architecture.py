"""The house rules of DESIGN.md's "Layout", checked on the real tree (see layout_rules.py).

Each rule also has a case built by hand that it must catch, so a checker that silently sees
nothing (a wrong folder, a parser that skips files) fails here instead of passing.
"""

from __future__ import annotations

from layout_rules import (
    MAX_LONG_FUNCTIONS,
    MAX_MODULE_LINES,
    ImportEdge,
    cycles,
    layer_breaches,
    local_project_imports,
    python_files,
    scan,
)

REPORT = scan()


def test_the_checker_reads_the_whole_tree():
    files = python_files("dialogpt", "dialogpt_dataset", "metrics", "scripts")
    assert len(files) > 40
    assert any(e.source == "dialogpt.cli.train" for e in REPORT.edges)


def test_no_module_over_the_limit():
    assert REPORT.long_modules == [], f"modules over {MAX_MODULE_LINES} lines: {REPORT.long_modules}"


def test_at_most_two_long_functions_each_saying_why():
    unmarked = [f"{w} ({n} lines)" for w, n, marked in REPORT.long_functions if not marked]
    assert unmarked == [], f"functions over 60 lines without a '# long: why' comment above: {unmarked}"
    assert len(REPORT.long_functions) <= MAX_LONG_FUNCTIONS, REPORT.long_functions


def test_imports_run_one_way():
    assert layer_breaches(REPORT.edges) == []


def test_no_import_cycle_between_modules():
    assert cycles(REPORT.edges) == []


def test_no_function_local_project_import():
    assert local_project_imports(REPORT.edges) == []


def test_the_rules_catch_what_they_are_for():
    edges = [
        ImportEdge("dialogpt.train.loop", "dialogpt.train.model", 1, False, "import"),
        ImportEdge("dialogpt.train.model", "dialogpt.train.loop", 9, True, "from dialogpt.train.loop import x"),
        ImportEdge("dialogpt.serve.app", "dialogpt.cli.chat", 3, False, "from dialogpt.cli.chat import y"),
        ImportEdge("dialogpt.legacy_tsv", "dialogpt_dataset.normalize", 4, False, "import z"),
    ]
    assert cycles(edges) == [["dialogpt.train.loop", "dialogpt.train.model"]]
    assert len(layer_breaches(edges)) == 2  # serve -> cli, core -> dataset
    assert local_project_imports(edges) == ["dialogpt.train.model:9: from dialogpt.train.loop import x"]
