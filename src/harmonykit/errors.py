"""Exception types.

Every error a user can cause (a bad path, a corrupt file, a wrong option) is raised as a
:class:`HarmonykitError` subclass with a message that names the file and the problem.
The CLI prints those messages without a traceback and exits with status 2 (:data:`EXIT_USER`);
batch commands use :func:`batch_exit_code`.
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


#: exit status of every command: everything asked for was done
EXIT_OK = 0
#: an internal failure (a bug, out of memory): not caused by what the user gave
EXIT_INTERNAL = 1
#: a user mistake: a bad option, or a missing / unreadable / unusable input file
EXIT_USER = 2


def batch_exit_code(user_failures: int, internal_failures: int) -> int:
    """Exit status of a batch command that reported its bad items and finished the rest.

    ``EXIT_OK`` when nothing failed, ``EXIT_INTERNAL`` when any failure was internal,
    else ``EXIT_USER`` (every failure came from an input the user gave).

    >>> batch_exit_code(0, 0), batch_exit_code(3, 0), batch_exit_code(3, 1)
    (0, 2, 1)
    """
    if internal_failures:
        return EXIT_INTERNAL
    return EXIT_USER if user_failures else EXIT_OK
