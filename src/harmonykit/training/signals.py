"""A graceful stop on SIGTERM: what cluster schedulers and ``kill PID`` send before they
kill a job.

:class:`StopRequest` is a context manager that, while it is active, turns the first SIGTERM
into a request the training loop reads after each step: the loop then ends that step as the
last of the invocation (log row, samples, a checkpoint and ``weights/`` at that step) and
returns with status ``"stopped"``; ``--resume`` continues from there. A second SIGTERM acts
as it did before (by default: the process ends at once; the checkpoints stay consistent,
as after any kill). Only the main thread may install signal handlers; elsewhere (a trainer
run from a worker thread) the request is never set and signals act as before.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

__all__ = ["StopRequest"]


class StopRequest:
    """Catch the first of ``signals`` (default: SIGTERM) while active.

    >>> import os
    >>> with StopRequest() as stop:
    ...     os.kill(os.getpid(), signal.SIGTERM)
    ...     stop.requested, stop.signal_name
    (True, 'SIGTERM')
    >>> signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored on exit
    True
    """

    def __init__(self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM,)) -> None:
        self.signals = signals
        self.requested = False
        self.signal_name: str | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        sig = signal.Signals(signum)
        self.signal_name = sig.name
        signal.signal(sig, self._previous.pop(sig, signal.SIG_DFL))  # a second one acts as before

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
