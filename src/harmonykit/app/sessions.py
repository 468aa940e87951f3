"""Server-side editing sessions, keyed by a random id (no web framework needed here).

A session holds an :class:`~harmonykit.inference.EditSession` (image, masks, edits, region)
plus what the page needs (file name, timings). The model is not part of it: it is shared
by all sessions and runs once per upload.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from harmonykit.inference.editing import EditSession

__all__ = ["Session", "SessionStore"]


@dataclass
class Session:
    """One uploaded image being edited."""

    id: str
    edit: EditSession
    filename: str
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    touched: float = field(default_factory=time.time)


class SessionStore:
    """At most ``max_sessions`` sessions (least recently used dropped first); sessions idle
    for more than ``ttl_s`` seconds are dropped too. Thread-safe.

    The ids of the last :attr:`GONE_KEPT` dropped sessions are remembered with the reason,
    so a page still using one is told why (:meth:`why_gone`) instead of "unknown".
    """

    GONE_KEPT = 256

    def __init__(self, max_sessions: int = 8, ttl_s: float = 3600.0) -> None:
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be >= 1, got {max_sessions}")
        self.max_sessions = int(max_sessions)
        self.ttl_s = float(ttl_s)
        self._items: OrderedDict[str, Session] = OrderedDict()
        self._gone: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, edit: EditSession, filename: str, timings: dict[str, float], notes: list[str] | None = None) -> Session:
        session = Session(secrets.token_urlsafe(12), edit, filename, dict(timings), list(notes or []))
        with self._lock:
            self._expire()
            self._items[session.id] = session
            while len(self._items) > self.max_sessions:
                sid, _ = self._items.popitem(last=False)
                self._forget(sid, f"it was closed to make room for a newer image (the editor keeps at most "
                                  f"{self.max_sessions} open, dropping the least recently used)")
        return session

    def why_gone(self, session_id: str) -> str | None:
        """Why a recently dropped session is gone, or ``None`` if the id is not known."""
        with self._lock:
            return self._gone.get(session_id)

    def _forget(self, session_id: str, reason: str) -> None:
        self._gone[session_id] = reason
        while len(self._gone) > self.GONE_KEPT:
            self._gone.popitem(last=False)

    def get(self, session_id: str) -> Session | None:
        with self._lock:
            self._expire()
            s = self._items.get(session_id)
            if s is not None:
                s.touched = time.time()
                self._items.move_to_end(session_id)
            return s

    def remove(self, session_id: str) -> bool:
        with self._lock:
            found = self._items.pop(session_id, None) is not None
            if found:
                self._forget(session_id, "it was deleted")
            return found

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def _expire(self) -> None:
        now = time.time()
        for sid in [k for k, s in self._items.items() if now - s.touched > self.ttl_s]:
            del self._items[sid]
            self._forget(sid, f"it expired after {self.ttl_s / 60:g} minutes without use")

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._items)

    def describe(self) -> dict[str, Any]:
        return {"sessions": len(self), "max_sessions": self.max_sessions, "ttl_s": self.ttl_s}
