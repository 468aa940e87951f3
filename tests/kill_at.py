"""Fault injection for the kill tests: run ``harmonykit ARGS`` and SIGKILL it at a chosen call.

Usage::

    python kill_at.py EVENT MATCH NTH -- ARGS...

``EVENT`` is one of

* ``replace`` - just before the ``os.replace(src, dst)`` whose ``dst`` ends with ``MATCH``
  (a path tail such as ``checkpoints/last`` or ``/weights``);
* ``replaced`` - just after that rename;
* ``mkstemp`` - just after ``tempfile.mkstemp`` created an (empty) temporary file in a
  folder ending with ``MATCH``, before anything is written to it;
* ``rmtree`` - just before ``shutil.rmtree(path)`` with ``path`` ending with ``MATCH``.

``NTH`` (1-based) picks the n-th matching call. The process kills itself with a real
``SIGKILL`` (no cleanup handler, no ``finally`` runs), exactly like ``kill -9``; with
``KILL_AT_SIGNAL=TERM`` in the environment it sends itself ``SIGTERM`` instead.
``MATCH`` is compared with ``/`` separators; ``-`` means any path.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile

_count = 0


def _hit(path: object, match: str, nth: int) -> None:
    global _count
    p = os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(path)
    p = p.replace(os.sep, "/").rstrip("/")
    if match == "-" or p.endswith(match):
        _count += 1
        if _count == nth:
            sys.stderr.flush()
            sig = signal.SIGTERM if os.environ.get("KILL_AT_SIGNAL") == "TERM" else signal.SIGKILL
            os.kill(os.getpid(), sig)


def install(event: str, match: str, nth: int) -> None:
    """Patch the library calls so that the ``nth`` match of ``event`` kills the process."""
    if event in ("replace", "replaced"):
        real_replace = os.replace

        def replace(src, dst, *a, **kw):  # type: ignore[no-untyped-def]
            if event == "replace":
                _hit(dst, match, nth)
            real_replace(src, dst, *a, **kw)
            if event == "replaced":
                _hit(dst, match, nth)

        os.replace = replace
    elif event == "mkstemp":
        real_mkstemp = tempfile.mkstemp

        def mkstemp(*a, **kw):  # type: ignore[no-untyped-def]
            fd, name = real_mkstemp(*a, **kw)
            _hit(os.path.dirname(name), match, nth)
            return fd, name

        tempfile.mkstemp = mkstemp
    elif event == "rmtree":
        real_rmtree = shutil.rmtree

        def rmtree(path, *a, **kw):  # type: ignore[no-untyped-def]
            _hit(path, match, nth)
            return real_rmtree(path, *a, **kw)

        shutil.rmtree = rmtree  # type: ignore[assignment]
    else:
        raise SystemExit(f"unknown event {event!r}")


def main() -> None:
    event, match, nth, sep, *args = sys.argv[1:]
    assert sep == "--", "usage: kill_at.py EVENT MATCH NTH -- ARGS..."
    install(event, match, int(nth))
    from harmonykit.cli.main import main as cli_main

    sys.argv = ["harmonykit", *args]
    raise SystemExit(cli_main(args))


if __name__ == "__main__":
    main()
