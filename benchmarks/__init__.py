"""Benchmark and report scripts of harmonykit (not part of the installed package).

Run them from the repository root as modules, e.g. ``python -m benchmarks.results.reproduce``
(see ``benchmarks/README.md``); shared constants live in :mod:`benchmarks._common`.
"""
