"""The output folder of a benchmark build (:mod:`harmonykit.data.builder`): file names per
layout, the book-keeping in ``.build/`` (settings, per-sample records, skip records, the
lock) and the merge of the records into ``manifest.jsonl`` and ``benchmark.json``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harmonykit import __version__
from harmonykit.data.build_settings import BuildError
from harmonykit.io import atomic_write_text, is_temp_name, remove_stale_temp_files

__all__ = [
    "BUILD_DIR",
    "SETTINGS_FILE",
    "BENCHMARK_FORMAT",
    "dumps_sorted",
    "relative_to_root",
    "ih4_names",
    "files_for",
    "record_path",
    "skip_path",
    "is_finished",
    "locked",
    "prepare_out",
    "read_skips",
    "clean_temporaries",
    "write_manifest",
]

BUILD_DIR = ".build"
SETTINGS_FILE = "settings.json"
BENCHMARK_FORMAT = 1

# the builder's logger: the command line shows its warnings
log = logging.getLogger("harmonykit.data.builder")


def dumps_sorted(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False)


def relative_to_root(path: Path | None, root: Path) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return str(Path(path).resolve())



def ih4_names(item_id: str, per_image: int) -> tuple[str, str, str]:
    """``(real, mask, composite)`` stems of a sample in the iHarmony4 layout."""
    stem, k = (item_id.rsplit("_", 1)[0], int(item_id.rsplit("_", 1)[1])) if per_image > 1 else (item_id, 0)
    real = re.sub(r"[^0-9A-Za-z]", "", stem) or "image"
    if per_image > 1:
        real += f"s{k}"
    return real, f"{real}_1", f"{real}_1_1"


def files_for(item_id: str, layout: str, per_image: int = 1, subset: str | None = None) -> dict[str, str]:
    if layout == "triptych":
        return {"triptych": f"{item_id}.png"}
    if layout == "iharmony4":
        real, mask, comp = ih4_names(item_id, per_image)
        return {
            "composite": f"{subset}/composite_images/{comp}.png",
            "real": f"{subset}/real_images/{real}.png",
            "mask": f"{subset}/masks/{mask}.png",
        }
    return {k: f"{k}/{item_id}.png" for k in ("composite", "real", "mask")}


def record_path(out: Path, item_id: str) -> Path:
    return out / BUILD_DIR / "records" / f"{item_id}.json"


def skip_path(out: Path, item_id: str) -> Path:
    return out / BUILD_DIR / "skipped" / f"{item_id}.json"


def is_finished(out: Path, item_id: str, layout: str, per_image: int = 1, subset: str | None = None) -> bool:
    if not record_path(out, item_id).is_file():
        return False
    return all((out / rel).is_file() for rel in files_for(item_id, layout, per_image, subset).values())


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """Exclusive lock on ``out/.build/lock`` (POSIX ``flock``; no-op where unavailable)."""
    lock_path = out / BUILD_DIR / "lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def prepare_out(out: Path, settings: dict[str, Any]) -> None:
    """Create ``out`` or check that it is a build folder with the same settings."""
    path = out / BUILD_DIR / SETTINGS_FILE
    if out.exists() and not out.is_dir():
        raise BuildError(f"{out}: output path exists and is not a folder")
    if out.is_dir() and not (out / BUILD_DIR).is_dir():
        others = sorted(p.name for p in out.iterdir())
        if others:  # checked before anything (the lock file) is created in a foreign folder
            raise BuildError(
                f"{out}: folder is not empty and is not a harmonykit benchmark build "
                f"(found {', '.join(others[:3])}); choose an empty or new --out folder"
            )
    with locked(out):
        if path.is_file():
            try:
                old = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError) as exc:
                raise BuildError(f"{path}: unreadable build settings ({exc}); use a new --out folder") from None
            diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
            if diff:
                details = "; ".join(f"{k}: {old.get(k)!r} in the folder, {settings.get(k)!r} now" for k in diff)
                raise BuildError(
                    f"{out}: this folder was built with different settings ({details}); "
                    "use the same settings to resume, or a new --out folder"
                )
            return
        others = sorted(p.name for p in out.iterdir() if p.name != BUILD_DIR)
        if others:
            raise BuildError(
                f"{out}: folder holds files but no build settings (found {', '.join(others[:3])}); "
                "choose an empty or new --out folder"
            )
        atomic_write_text(path, dumps_sorted(settings) + "\n")

# ----------------------------------------------------------------------------- manifest


def read_skips(skip_dir: Path) -> dict[str, dict[str, Any]]:
    """The skip records of ``skip_dir`` by item id: one per id, temporaries ignored.

    Records are written atomically, so only a hidden temporary of a killed writer can be
    partial; it is never read (and :func:`clean_temporaries` removes it). A record that is
    unreadable anyway is dropped with a warning, and the item counts as pending.
    """
    skips: dict[str, dict[str, Any]] = {}
    if not skip_dir.is_dir():
        return skips
    for p in sorted(skip_dir.glob("*.json")):
        if is_temp_name(p.name):
            continue
        item_id = p.name[: -len(".json")]
        try:
            rec = json.loads(p.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("%s: ignoring unreadable skip record (%s)", p, exc)
            continue
        if not isinstance(rec, dict) or rec.get("id") != item_id:
            log.warning("%s: ignoring skip record of another item", p)
            continue
        skips[item_id] = rec
    return skips


def clean_temporaries(out: Path) -> None:
    """Remove the temporary files a killed build (this or an earlier run) left in ``out``."""
    remove_stale_temp_files(out, recursive=True)


def write_manifest(out: Path, settings: dict[str, Any], selected_ids: list[str]) -> tuple[int, bool]:
    """Merge per-sample records into ``manifest.jsonl`` and ``benchmark.json``.

    Returns ``(finished samples in the folder, complete)``.
    """
    with locked(out):
        rec_dir = out / BUILD_DIR / "records"
        skip_dir = out / BUILD_DIR / "skipped"
        layout = settings["layout"]
        per_image, subset = settings["samples_per_image"], settings.get("subset")
        records: dict[str, str] = {}
        if rec_dir.is_dir():
            for p in sorted(rec_dir.glob("*.json")):
                item_id = p.name[: -len(".json")]
                if is_temp_name(p.name):
                    continue  # a killed writer's temporary (removed at the start of a build)
                if is_finished(out, item_id, layout, per_image, subset):
                    records[item_id] = p.read_text("utf-8").strip()
        skips = [s for i, s in sorted(read_skips(skip_dir).items()) if i not in records]
        skipped_ids = {s["id"] for s in skips}
        pending = sorted(i for i in selected_ids if i not in records and i not in skipped_ids)
        complete = not pending
        ids = sorted(records)
        atomic_write_text(out / "manifest.jsonl", "".join(records[i] + "\n" for i in ids))
        if layout == "iharmony4":
            split_name = "train" if settings.get("split") == "train" else "test"
            names = sorted(Path(files_for(i, layout, per_image, subset)["composite"]).name for i in ids)
            atomic_write_text(out / str(subset) / f"{subset}_{split_name}.txt", "".join(n + "\n" for n in names))
        bench = {
            "benchmark_format": BENCHMARK_FORMAT,
            "harmonykit_version": __version__,
            "layout": layout,
            "files": (
                {"triptych": "<id>.png: [real | composite | mask] side by side, (S, 3S, 3) RGB"}
                if layout == "triptych"
                else {"composite": f"{subset}/composite_images/<real>_<k>_1.png", "real": f"{subset}/real_images/<real>.png",
                      "mask": f"{subset}/masks/<real>_<k>.png (0/255)"}
                if layout == "iharmony4"
                else {"composite": "composite/<id>.png", "real": "real/<id>.png", "mask": "mask/<id>.png (0/255)"}
            ),
            "manifest": "manifest.jsonl",
            "settings": settings,
            "counts": {
                "selected": len(selected_ids),
                "samples": len(ids),
                "skipped": len(skips),
                "pending": len(pending),
            },
            "complete": complete,
            "skipped": sorted(skips, key=lambda s: s["id"]),
        }
        atomic_write_text(out / "benchmark.json", json.dumps(bench, sort_keys=True, indent=2, ensure_ascii=False) + "\n")
    return len(ids), complete

