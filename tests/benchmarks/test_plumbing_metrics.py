"""benchmarks/tools/plumbing_metrics.py: import circles and module sizes, from syntax trees."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def pm(benchmark_script):
    return benchmark_script("plumbing_metrics")


def _src(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def test_circles_hard_and_soft(pm):
    sources = {
        "__init__.py": "",
        "a.py": _src("from harmonykit.b import x"),
        "b.py": _src("import harmonykit.a"),  # a <-> b: module level both ways
        "pkg/__init__.py": _src("from harmonykit.pkg.c import y"),
        "pkg/c.py": _src("def f():", "    from harmonykit.pkg import d"),  # submodule import, in a function
        "pkg/d.py": _src("from typing import TYPE_CHECKING", "if TYPE_CHECKING:", "    from harmonykit.pkg.c import y",
                         "from harmonykit.pkg.e import z"),
        "pkg/e.py": _src("x = 1"),
        "f.py": _src("from . import e2", "from .a import x"),  # relative imports: e2 is no module -> the package
    }
    m = pm.measure(sources)
    assert m.hard_import_circles == [["harmonykit.a", "harmonykit.b"]]
    assert m.soft_import_circles == [["harmonykit.pkg.c", "harmonykit.pkg.d"]]


def test_three_module_circle_and_no_self_edge(pm):
    sources = {
        "x.py": _src("from harmonykit import y", "from harmonykit.x import q"),
        "y.py": _src("def g():", "    import harmonykit.z"),
        "z.py": _src("from harmonykit.x import p"),
    }
    assert pm.measure(sources).soft_import_circles == [["harmonykit.x", "harmonykit.y", "harmonykit.z"]]


def test_modules_over_the_limit(pm):
    big = "x = 1\n" * (pm.MAX_MODULE_LINES + 1)
    m = pm.measure({"big.py": big, "small.py": "x = 1\n" * pm.MAX_MODULE_LINES})
    assert m.modules_over_limit == [(pm.MAX_MODULE_LINES + 1, "harmonykit.big")]
    report = pm.report(m, "t")
    assert "modules over 600 lines: 1" in report and "import circles: 0 hard" in report


def test_the_package_has_no_circle_and_no_large_module(pm):
    """Issue 28: no import circle (hard or soft) and no module over 600 lines, anywhere."""
    m = pm.measure(pm.sources_at(None))
    assert m.hard_import_circles == []
    assert m.soft_import_circles == []
    assert m.modules_over_limit == []
