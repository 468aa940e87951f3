"""Exception types.

Every error a user can cause (a bad path, a corrupt file, a wrong option) is raised as a
:class:`HarmonykitError` subclass with a message that names the file and the problem.
The CLI prints those messages without a traceback and exits with status 2.
"""

from __future__ import annotations

from pathlib import Path


class HarmonykitError(Exception):
    """Base class for errors caused by user input; printed without traceback by the CLI."""


class ImageReadError(HarmonykitError, ValueError):
    """An image, mask or label map could not be read or is not usable.

    >>> str(ImageReadError("a.png", "not an image"))
    'a.png: not an image'
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ConfigError(HarmonykitError, ValueError):
    """A configuration file or a ``key=value`` override is invalid."""


class MissingDependencyError(HarmonykitError, ImportError):
    """An optional extra (``sam``, ``lpips``, ``app``) or a weights file is missing."""
