"""How the command line shows the library's log records (the library only logs).

:func:`harmonykit.cli.main.main` shows every ``harmonykit`` logger's INFO+ records on
stderr as ``harmonykit: message``. A command may show those of one part of the library its
own way for the length of a block (:func:`show_messages`): ``harmonykit train`` prints the
trainer's as ``harmonykit train: message`` on stdout, ``harmonykit build-benchmark`` the
builder's skips as ``harmonykit build-benchmark: skipped ...`` above its progress bar.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator

__all__ = ["ConsoleHandler", "show_messages"]


class ConsoleHandler(logging.Handler):
    """Writes records with ``write``, or to the *current* ``sys.stdout`` / ``sys.stderr``
    (looked up at each record, so redirections and captured streams see them)."""

    def __init__(self, stream: str = "stderr", write: Callable[[str], None] | None = None) -> None:
        super().__init__()
        if stream not in ("stdout", "stderr"):
            raise ValueError(f"stream must be 'stdout' or 'stderr', got {stream!r}")
        self.stream_name = stream
        self.write = write

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            if self.write is not None:
                self.write(text)
            else:
                print(text, file=getattr(sys, self.stream_name))
        except Exception:  # pragma: no cover - logging must never break a command
            self.handleError(record)


@contextlib.contextmanager
def show_messages(logger: str, prefix: str, stream: str = "stderr",
                  write: Callable[[str], None] | None = None, level: int = logging.INFO) -> Iterator[None]:
    """During the block, show the ``level``+ records of ``logger`` (and its children) as
    ``<prefix>: message`` on ``stream`` (or through ``write``), and only so: they do not
    also reach the ``harmonykit`` handler. Everything is restored afterwards.

    >>> import io
    >>> out = io.StringIO()
    >>> with show_messages("harmonykit.demo", "harmonykit demo", write=out.write):
    ...     logging.getLogger("harmonykit.demo.part").info("hello")
    >>> out.getvalue()
    'harmonykit demo: hello'
    """
    target = logging.getLogger(logger)
    handler = ConsoleHandler(stream, write)
    handler.setFormatter(logging.Formatter(f"{prefix}: %(message)s"))
    saved = target.propagate, target.level
    target.addHandler(handler)
    target.propagate = False
    target.setLevel(level)
    try:
        yield
    finally:
        target.removeHandler(handler)
        target.propagate = saved[0]
        target.setLevel(saved[1])
