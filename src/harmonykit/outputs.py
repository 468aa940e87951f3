"""The output guard: where a command writes is checked before any work.

Every command that writes files uses these rules (``harmonize``, ``edit``, ``evaluate``,
``regions``, ``train``):

* :func:`check_writable` - the output folder (or the nearest folder above it that exists,
  when it is still to be created) accepts a new file: probed by creating and removing a
  temporary file, so a read-only mount, a missing permission or a path through a file is
  found before a model is loaded or any scoring starts.
* :func:`refuse_overwrite` - no output is one of the command's inputs (the same path, or the
  same file through a link); only an explicit ``allow`` (``harmonize --overwrite``) lets
  results replace their inputs.
* :func:`write_or_fail` - a write that fails (disk full, folder gone) becomes an
  :class:`OutputError` naming the file; :class:`ItemWrites` writes the files of one item
  beside their destinations and moves them into place only when all are written, so an item
  is on disk whole or not at all and a failed item leaves the previous files as they were.
* :func:`remove_if_created_empty` - a folder the command created and left empty (every input
  failed) is removed again.

All raise :class:`OutputError` (a :class:`~harmonykit.errors.HarmonykitError`: exit status 2,
one line naming the file).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from harmonykit.errors import HarmonykitError
from harmonykit.io import tagged_temp_path

__all__ = ["OutputError", "check_writable", "refuse_overwrite", "refuse_inside", "write_or_fail", "ItemWrites",
           "remove_if_created_empty"]

log = logging.getLogger(__name__)


class OutputError(HarmonykitError):
    """An output that cannot be written, or that would replace an input."""


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_writable(folder: str | Path, label: str = "--out") -> None:
    """Raise :class:`OutputError` unless a file can be created in ``folder`` (or, when it
    does not exist yet, in the nearest existing folder above it, where it would be created).

    >>> import tempfile
    >>> check_writable(tempfile.mkdtemp() + "/new/sub")
    """
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{label} {folder}: exists and is not a folder")
    base = _nearest_existing(folder.absolute())
    if not base.is_dir():
        raise OutputError(f"{label} {folder}: cannot create it, {base} is a file")
    try:
        fd, probe = tempfile.mkstemp(prefix=".harmonykit-write-test-", dir=base)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        where = "" if base == folder.absolute() else f" (it would be created in {base})"
        raise OutputError(f"{label} {folder}: cannot write there{where}: {exc.strerror or exc}") from None


def _identity(path: Path) -> tuple[str, tuple[int, int] | None]:
    resolved = str(path.expanduser().resolve())
    try:
        st = path.stat()
        return resolved, (st.st_dev, st.st_ino)
    except OSError:
        return resolved, None


def refuse_overwrite(outputs: Iterable[str | Path], inputs: Iterable[str | Path], allow: bool = False,
                     hint: str = "choose another --out") -> None:
    """Raise :class:`OutputError` for the first of ``outputs`` that is one of ``inputs``
    (the same resolved path, or the same file through a hard or symbolic link), unless
    ``allow``. Nothing is written before this check.

    >>> refuse_overwrite(["a/x.png"], ["a/y.png"])
    >>> refuse_overwrite(["a/x.png"], ["a/../a/x.png"])
    Traceback (most recent call last):
    ...
    harmonykit.outputs.OutputError: a/x.png: refusing to write over an input (a/../a/x.png); choose another --out
    """
    if allow:
        return
    paths: dict[str, Path] = {}
    files: dict[tuple[int, int], Path] = {}
    for p in inputs:
        p = Path(p)
        resolved, ident = _identity(p)
        paths.setdefault(resolved, p)
        if ident is not None:
            files.setdefault(ident, p)
    for out in outputs:
        out = Path(out)
        resolved, ident = _identity(out)
        hit = paths.get(resolved) or (files.get(ident) if ident is not None else None)
        if hit is not None:
            raise OutputError(f"{out}: refusing to write over an input ({hit}); {hint}")


def refuse_inside(out: str | Path, folder: str | Path, what: str, label: str = "--out") -> None:
    """Raise :class:`OutputError` when ``out`` is the input folder ``folder`` or inside it
    (a report written among a benchmark's files would be read as part of it next time).

    >>> refuse_inside("reports/x", "bench", "the benchmark")
    >>> refuse_inside("bench/report", "bench", "the benchmark")
    Traceback (most recent call last):
    ...
    harmonykit.outputs.OutputError: --out bench/report is inside the benchmark bench: choose a folder outside it
    """
    o, f = Path(out).expanduser().resolve(), Path(folder).expanduser().resolve()
    if o == f or f in o.parents:
        raise OutputError(f"{label} {out} is inside {what} {folder}: choose a folder outside it")


def write_or_fail(path: str | Path, write: Callable[[Path], object]) -> None:
    """``write(path)``; an ``OSError`` (disk full, read-only, folder removed) becomes an
    :class:`OutputError` that names the file. The writers are atomic
    (:func:`harmonykit.io.atomic_write`): a failed write leaves no partial file."""
    path = Path(path)
    try:
        write(path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


class ItemWrites:
    """The files of one item (an image and its masks, heatmaps, figure), written whole or
    not at all, in two phases: :meth:`write` writes each file to a hidden temporary beside
    its destination (same folder and extension, so the writer picks the same format);
    :meth:`commit` moves them all into place once every one is written; :meth:`discard`
    (a later write of the item failed) removes the temporaries. Until :meth:`commit`, no file
    the user had is touched, so a failure never costs the results of an earlier run.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> item = ItemWrites()
    >>> _ = item.write(d / "a.txt", lambda p: p.write_text("new"))
    >>> sorted(q.name for q in d.iterdir()) == [item.staged[0][0].name] and not (d / "a.txt").exists()
    True
    >>> item.commit() == [d / "a.txt"], (d / "a.txt").read_text()
    (True, 'new')
    """

    def __init__(self) -> None:
        self.staged: list[tuple[Path, Path]] = []  # (temporary, destination)

    def write(self, path: str | Path, write: Callable[[Path], object]) -> Path:
        """``write(temporary)`` for the destination ``path``; returns ``path``.

        Raises:
            OutputError: the write failed (names ``path``).
        """
        path = Path(path)
        try:
            tmp = tagged_temp_path(path)  # removed as stale when this process is killed
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        try:
            write(tmp)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        self.staged.append((tmp, path))
        return path

    def commit(self) -> list[Path]:
        """Move every written file into place (each by one rename); the destinations.

        Raises:
            OutputError: a destination is a folder, or a rename failed (names the file); the
                temporaries not yet moved are removed.
        """
        try:
            for _, dest in self.staged:
                if dest.is_dir():
                    raise OutputError(f"cannot write {dest}: a folder of that name is in the way")
            done = []
            for tmp, dest in self.staged:
                try:
                    os.replace(tmp, dest)
                except OSError as exc:
                    raise OutputError(f"cannot write {dest}: {exc.strerror or exc}") from None
                done.append(dest)
        except BaseException:
            self.discard()
            raise
        self.staged = []
        return done

    def discard(self) -> None:
        """Remove the temporaries of the files written so far (nothing the user had)."""
        for tmp, _ in self.staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if self.staged:
            log.debug("removed %d unfinished output(s) of a failed item", len(self.staged))
        self.staged = []


def remove_if_created_empty(folder: str | Path, existed: bool) -> bool:
    """Remove ``folder`` when it did not exist before (``existed`` false) and is empty now;
    whether it was removed."""
    folder = Path(folder)
    if existed or not folder.is_dir():
        return False
    try:
        folder.rmdir()
    except OSError:  # not empty (or not ours to remove)
        return False
    return True
