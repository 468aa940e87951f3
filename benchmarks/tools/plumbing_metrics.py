"""Structure figures of the package, read from its syntax trees (no import, no torch).

    python -m benchmarks.tools.plumbing_metrics                 # this checkout's src/harmonykit
    python -m benchmarks.tools.plumbing_metrics --rev 4f4e2e9   # a commit, read with `git show`
    python -m benchmarks.tools.plumbing_metrics --json

Prints, for issue 15 ("one registry, one runner, typed records"):

* the largest functions (lines, qualified name) and how many are over 60 lines;
* registries: module-level mutable dicts that a ``register*`` function fills, the
  ``register*`` functions defined, and how many of those names are defined more than once;
* private names imported across modules (``from harmonykit.x import _name``);
* string-keyed subscripts of a variable that holds a record passed between layers
  (named one of :data:`RECORD_NAMES`: ``batch["composite"]``, ``item["error"]``, ``body["x"]``);
* ``print(`` calls in library code (everything but ``cli/``);
* lines of ``evaluation/evaluator.py`` (or of the largest module of ``evaluation/``);

and, for issue 28 ("one path from pixels to result"):

* modules over :data:`MAX_MODULE_LINES` lines;
* import circles: groups of modules that import each other (strongly connected components of
  the graph of ``harmonykit`` imports). *Hard* circles use module-level imports only (they
  fail or half-initialise at import time); *soft* ones need at least one import made inside
  a function or under ``if TYPE_CHECKING:`` (they work, but the two modules are one unit).
  An import names the module it reads (``from harmonykit.models import base`` -> the
  submodule ``harmonykit.models.base``; ``from harmonykit.models import create_model`` ->
  the package ``harmonykit.models``); that it also runs the parents' ``__init__`` is not
  counted.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "src/harmonykit"
#: variable names that hold batches, evaluator items and request bodies in this code base
RECORD_NAMES = frozenset({"batch", "b", "it", "item", "items", "sample", "body", "record"})
#: the size limit of a module (lines)
MAX_MODULE_LINES = 600


@dataclass
class Metrics:
    modules: int = 0
    lines: int = 0
    largest_functions: list[tuple[int, str]] = field(default_factory=list)
    functions_over_60: int = 0
    registry_dicts: list[str] = field(default_factory=list)
    register_functions: list[str] = field(default_factory=list)
    register_names_defined_twice: list[str] = field(default_factory=list)
    private_cross_imports: list[str] = field(default_factory=list)
    record_string_subscripts: int = 0
    library_prints: int = 0
    evaluator_lines: int = 0
    modules_over_limit: list[tuple[int, str]] = field(default_factory=list)
    hard_import_circles: list[list[str]] = field(default_factory=list)
    soft_import_circles: list[list[str]] = field(default_factory=list)


def sources_at(rev: str | None) -> dict[str, str]:
    """``{path relative to src/harmonykit: text}`` of the working tree or of a commit."""
    if rev is None:
        root = REPO / PACKAGE
        return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*.py"))}
    names = subprocess.run(["git", "-C", str(REPO), "ls-tree", "-r", "--name-only", rev, PACKAGE],
                           check=True, capture_output=True, text=True).stdout.split()
    out = {}
    for n in names:
        if n.endswith(".py"):
            out[n[len(PACKAGE) + 1:]] = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:{n}"],
                                                       check=True, capture_output=True, text=True).stdout
    return out


def module_name(rel: str) -> str:
    parts = ["harmonykit", *Path(rel).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(tree: ast.Module, mod: str, modules: set[str], is_package: bool = False) -> list[tuple[str, bool]]:
    """``(imported harmonykit module, module_level)`` for every import of ``tree``:
    ``module_level`` is False for imports inside a function or under ``if TYPE_CHECKING:``."""
    out: list[tuple[str, bool]] = []
    package = mod if is_package else mod.rpartition(".")[0]

    def target(name: str, alias: str | None) -> str | None:
        if alias is not None and f"{name}.{alias}" in modules:
            return f"{name}.{alias}"
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    def walk(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for a in child.names:
                    if a.name.split(".")[0] == "harmonykit" and (t := target(a.name, None)):
                        out.append((t, top))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - (child.level - 1)]
                    base = ".".join(parts + ([base] if base else []))
                if base.split(".")[0] == "harmonykit":
                    for a in child.names:
                        if (t := target(base, a.name)) is not None:
                            out.append((t, top))
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                walk(child, False)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                walk(child, False)
            else:
                walk(child, top)

    walk(tree, True)
    return [(t, top) for t, top in out if t != mod]


def import_circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (sorted), by Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
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
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(out)


def measure(sources: dict[str, str]) -> Metrics:
    m = Metrics(modules=len(sources))
    funcs: list[tuple[int, str]] = []
    register_defs: Counter[str] = Counter()
    modules = {module_name(rel) for rel in sources}
    hard_edges: dict[str, set[str]] = {}
    all_edges: dict[str, set[str]] = {}
    for rel, text in sources.items():
        m.lines += text.count("\n")
        tree = ast.parse(text, filename=rel)
        mod = module_name(rel)
        if text.count("\n") > MAX_MODULE_LINES:
            m.modules_over_limit.append((text.count("\n"), mod))
        for target, top in imports_of(tree, mod, modules, rel.endswith("__init__.py")):
            all_edges.setdefault(mod, set()).add(target)
            if top:
                hard_edges.setdefault(mod, set()).add(target)
        if rel == "evaluation/evaluator.py":
            m.evaluator_lines = text.count("\n")

        def visit(node: ast.AST, prefix: str, mod: str = mod) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    q = f"{prefix}{child.name}"
                    funcs.append((child.end_lineno - child.lineno + 1, f"{mod}.{q}"))
                    visit(child, q + ".")
                elif isinstance(child, ast.ClassDef):
                    visit(child, f"{prefix}{child.name}.")
                else:
                    visit(child, prefix)

        visit(tree, "")
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("register"):
                register_defs[node.name] += 1
                m.register_functions.append(f"{mod}.{node.name}")
            target = value = None
            if isinstance(node, ast.AnnAssign):
                target, value = node.target, node.value
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            if isinstance(target, ast.Name) and isinstance(value, ast.Dict) and not value.keys:
                # an empty module-level dict that some register* function of the module writes
                for fn in tree.body:
                    if isinstance(fn, ast.FunctionDef) and fn.name.startswith("register") and any(
                        isinstance(n, ast.Name) and n.id == target.id for n in ast.walk(fn)
                    ):
                        m.registry_dicts.append(f"{mod}.{target.id}")
                        break
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harmonykit"):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        m.private_cross_imports.append(f"{mod} <- {node.module}.{alias.name}")
            elif (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in RECORD_NAMES
                  and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str)):
                m.record_string_subscripts += 1
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
                  and not rel.startswith("cli/")):
                m.library_prints += 1
    funcs.sort(reverse=True)
    m.largest_functions = funcs[:8]
    m.functions_over_60 = sum(1 for n, _ in funcs if n > 60)
    m.register_names_defined_twice = sorted(n for n, c in register_defs.items() if c > 1)
    m.modules_over_limit.sort(reverse=True)
    m.hard_import_circles = import_circles(hard_edges)
    m.soft_import_circles = [c for c in import_circles(all_edges) if c not in m.hard_import_circles]
    return m


def report(m: Metrics, label: str) -> str:
    lines = [f"## {label}: {m.modules} modules, {m.lines} lines",
             f"largest functions ({m.functions_over_60} over 60 lines):"]
    lines += [f"  {n:4d}  {q}" for n, q in m.largest_functions]
    lines += [f"registry dicts filled by register* functions: {len(m.registry_dicts)}",
              *[f"  {r}" for r in m.registry_dicts],
              f"register* functions: {len(m.register_functions)}"
              f" (names defined in more than one module: {', '.join(m.register_names_defined_twice) or 'none'})",
              *[f"  {r}" for r in m.register_functions],
              f"private names imported across modules: {len(m.private_cross_imports)}",
              *[f"  {r}" for r in m.private_cross_imports],
              f"string-keyed record subscripts (batch, item, body, ...): {m.record_string_subscripts}",
              f"print() calls outside cli/: {m.library_prints}",
              f"lines of evaluation/evaluator.py: {m.evaluator_lines}",
              f"modules over {MAX_MODULE_LINES} lines: {len(m.modules_over_limit)}",
              *[f"  {n:4d}  {q}" for n, q in m.modules_over_limit],
              f"import circles: {len(m.hard_import_circles)} hard (module-level imports), "
              f"{len(m.soft_import_circles)} soft (through function-level or TYPE_CHECKING imports)",
              *[f"  hard: {' <-> '.join(c)}" for c in m.hard_import_circles],
              *[f"  soft: {' <-> '.join(c)}" for c in m.soft_import_circles]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", action="append", default=[],
                    help="a git commit to measure instead of the working tree (repeat to compare)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = ap.parse_args(argv)
    revs = args.rev or [None]
    results = {(r or "working tree"): measure(sources_at(r)) for r in revs}
    if args.json:
        print(json.dumps({k: asdict(v) for k, v in results.items()}, indent=1))
    else:
        print("\n\n".join(report(v, k) for k, v in results.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
