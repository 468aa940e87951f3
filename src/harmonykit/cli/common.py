"""Helpers every harmonizing command shares (images, clips, composites): the early
``--model`` check and the SIGTERM clean-up."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["check_model_spec", "clean_exit_on_sigterm"]


@contextlib.contextmanager
def clean_exit_on_sigterm(out_dir: Path) -> Iterator[None]:
    """On SIGTERM: remove this process's temporaries in ``out_dir`` and exit with 143
    (128 + SIGTERM); finished outputs stay. A no-op outside the main thread."""
    import signal

    from harmonykit.io import remove_stale_temp_files

    def on_term(signum: int, frame: object) -> None:
        remove_stale_temp_files(out_dir, own=True)
        print("harmonykit harmonize: terminated (SIGTERM); finished outputs are kept", file=sys.stderr)
        raise SystemExit(128 + signal.SIGTERM)

    try:
        previous = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_model_spec(spec: str) -> None:
    """Raise the error :meth:`Harmonizer.from_pretrained` would raise for a ``--model`` that
    names nothing loadable, without importing PyTorch (which takes seconds): the same
    :func:`harmonykit.runners.spec.locate`. Specs that may load are left to ``from_pretrained``."""
    from harmonykit.runners.spec import locate  # no PyTorch

    locate(spec)
