"""Static checks of the house rules (DESIGN.md "Layout"), walked with ``ast`` so nothing is imported.

Kept apart from the test so ``python tests/core/layout_rules.py`` prints every breach at once.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHECKED_DIRS = ("dialogpt", "dialogpt_dataset", "metrics", "scripts")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_LONG_FUNCTIONS = 2
LONG_MARK = "# long:"  # the comment a long function carries on the line above its def, saying why

# which part of the code may import which (a layer always may import itself)
ALLOWED = {
    "core": {"core"},
    "scoring": {"core"},
    "train": {"core"},
    "decode": {"core"},
    "serve": {"decode", "core"},
    "cli": {"serve", "decode", "train", "scoring", "core"},
    "dataset": {"core"},
}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "dialogpt_dataset":
        return "dataset"
    if parts[0] != "dialogpt":
        return None
    if len(parts) > 1 and parts[1] in ("train", "decode", "serve", "scoring", "cli"):
        return parts[1]
    return "core"


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files(*dirs: str) -> list[Path]:
    return sorted(p for d in dirs for p in (REPO / d).rglob("*.py") if ".venv" not in p.parts)


@dataclass
class ImportEdge:
    source: str
    target: str
    line: int
    local: bool  # inside a function body
    text: str


@dataclass
class Report:
    long_modules: list[str] = field(default_factory=list)
    long_functions: list[tuple[str, int, bool]] = field(default_factory=list)  # (where, lines, marked)
    edges: list[ImportEdge] = field(default_factory=list)


def _resolve(source: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = source.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(source: str, is_package: bool, node: ast.AST, known: set[str]) -> list[str]:
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = _resolve(source, is_package, node)
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    out = []
    for name in names:
        while name and name not in known:  # `import dialogpt.train.loop as x` -> that module
            name = name.rpartition(".")[0]
        if name:
            out.append(name)
    return out


def _walk_imports(tree: ast.AST, source: str, is_package: bool, lines: list[str], known: set[str]):
    def visit(node: ast.AST, local: bool):
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for target in _targets(source, is_package, child, known):
                    if target != source:
                        yield ImportEdge(source, target, child.lineno, local, lines[child.lineno - 1].strip())
            yield from visit(child, inner)
    yield from visit(tree, False)


def _function_lengths(tree: ast.AST, where: str, lines: list[str]):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                above = lines[first - 2].strip() if first >= 2 else ""
                yield f"{where}:{node.lineno} {node.name}", length, above.startswith(LONG_MARK)


def scan() -> Report:
    report = Report()
    files = python_files(*CHECKED_DIRS)
    known = {module_name(p) for p in files}
    for path in files:
        text = path.read_text()
        lines = text.splitlines()
        rel = str(path.relative_to(REPO))
        if len(lines) > MAX_MODULE_LINES:
            report.long_modules.append(f"{rel} ({len(lines)} lines)")
        tree = ast.parse(text, filename=rel)
        report.long_functions.extend(_function_lengths(tree, rel, lines))
        report.edges.extend(_walk_imports(tree, module_name(path), path.name == "__init__.py", lines, known))
    return report


def layer_breaches(edges: list[ImportEdge]) -> list[str]:
    out = []
    for e in edges:
        src, dst = layer_of(e.source), layer_of(e.target)
        if src is None or dst is None or src == dst:
            continue
        if dst not in ALLOWED.get(src, set()):
            out.append(f"{e.source}:{e.line} ({src}) imports {e.target} ({dst}): {e.text}")
    return out


def local_project_imports(edges: list[ImportEdge]) -> list[str]:
    """Function-local imports of project modules: the way a cycle hides. ``# optional:`` marks the
    deliberate ones (a module whose third-party dependency is an optional extra), ``# deferred:`` a
    module whose import costs seconds that only some runs of a command need (torch)."""
    found = {f"{e.source}:{e.line}: {e.text}" for e in edges
             if e.local and layer_of(e.source) is not None and layer_of(e.target) is not None
             and "# optional:" not in e.text and "# deferred:" not in e.text}
    return sorted(found)


def cycles(edges: list[ImportEdge]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), over every import edge."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        if layer_of(e.source) is not None and layer_of(e.target) is not None:
            graph.setdefault(e.source, set()).add(e.target)
            graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return found


def _show(title: str, items: list[str]) -> None:
    print(f"{title}: {len(items)}")
    for item in items:
        print(f"  {item}")


if __name__ == "__main__":
    r = scan()
    _show(f"modules over {MAX_MODULE_LINES} lines", r.long_modules)
    _show(f"functions over {MAX_FUNCTION_LINES} lines",
          [f"{w} ({n} lines){' [marked]' if m else ''}" for w, n, m in r.long_functions])
    _show("layer breaches", layer_breaches(r.edges))
    _show("function-local project imports", local_project_imports(r.edges))
    _show("import cycles", [" <-> ".join(c) for c in cycles(r.edges)])
