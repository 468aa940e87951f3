"""The editor's refusals, below every other module of :mod:`harmonykit.app`."""

from __future__ import annotations

from harmonykit.errors import HarmonykitError

__all__ = ["EditorError"]


class EditorError(HarmonykitError):
    """A request the editor refuses; ``status_code`` is the HTTP status (400, 404, 413)."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = int(status_code)
