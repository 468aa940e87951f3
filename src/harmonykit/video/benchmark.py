"""A video harmonization benchmark built from photos with object masks (no HYouTube needed).

Each photo becomes one short clip, as HYouTube's composites were made (a fixed colour
transform of the object over the whole clip), with a camera move instead of real motion:

* **camera**: a slow pan and zoom: a crop window of the photo (``0.8`` of it, centred on
  the object) moves by up to ``pan`` of its size in a seeded direction while zooming in by
  ``zoom`` (linear over the clip), resampled bilinearly to the output size;
* **grade**: a :data:`GradeFactory` draws one pointwise colour transform per clip (default
  :func:`default_grade`: Reinhard colour transfer in CIELAB towards another photo's
  object, blended at 0.6..1, or random CIELAB scaling when there is no other photo); the
  graded photo is computed once and moved with the camera, so the transform is the same
  in every frame. The factory is a parameter: a ``.cube`` LUT (any ``uint8 RGB -> uint8
  RGB`` function with a ``to_dict()``) drops in without touching the builder;
* **frames**: ``real`` (the moved photo), ``composite`` (graded inside the moved mask,
  blended by its soft edge) and ``mask``, as PNG frames ``DIR/<id>/{composite,real,mask}/0000.png``
  (lossless, so scores are not codec noise), plus ``DIR/<id>/composite.mp4`` and
  ``mask.mp4`` for the command line (``--clips``); ``DIR/manifest.json`` records every
  clip's source, grade and camera. Deterministic for a seed.

Sources: a Lalonde-Efros ``onlineDb`` folder (natural photos and their object masks, the
``val`` split by source photo unless ``split`` says otherwise) or a folder of ``X.jpg`` +
``X_mask.png``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from harmonykit.errors import HarmonykitError

__all__ = ["Grade", "GradeFactory", "VideoBenchSettings", "build_video_benchmark", "default_grade",
           "iter_benchmark_clips", "list_photo_sources", "render_clip"]

log = logging.getLogger(__name__)


class Grade(Protocol):
    """A pointwise colour transform: ``apply(uint8 RGB) -> uint8 RGB`` and ``to_dict()``."""

    def apply(self, image: np.ndarray) -> np.ndarray: ...

    def to_dict(self) -> dict[str, Any]: ...


#: ``(rng, photo, mask, other photo and mask or None) -> Grade``
GradeFactory = Callable[[np.random.Generator, np.ndarray, np.ndarray, "tuple[np.ndarray, np.ndarray] | None"], Grade]


@dataclass(frozen=True)
class VideoBenchSettings:
    """Clip settings: ``frames`` per clip at ``fps``, ``size`` = output ``(H, W)``, camera
    ``pan`` (fraction of the window) and ``zoom`` (``1 + zoom`` at the end), ``seed``."""

    frames: int = 24
    fps: int = 12
    size: tuple[int, int] = (144, 192)
    pan: float = 0.15
    zoom: float = 0.12
    seed: int = 0

    def __post_init__(self) -> None:
        if self.frames < 2 or self.fps < 1 or min(self.size) < 16:
            raise HarmonykitError(f"invalid clip settings: {self}")
        if not 0 <= self.pan <= 0.5 or not 0 <= self.zoom <= 0.5:
            raise HarmonykitError(f"pan and zoom must be in [0, 0.5], got {self.pan}, {self.zoom}")


def default_grade(rng: np.random.Generator, photo: np.ndarray, mask: np.ndarray,
                  other: tuple[np.ndarray, np.ndarray] | None) -> Grade:
    """Reinhard transfer of the object's CIELAB statistics towards ``other``'s object
    (strength 0.6..1), else a random CIELAB scaling (L 0.75..1.25, a and b 0.5..1.5)."""
    from harmonykit.data.perturb.ops import LabScale
    from harmonykit.data.perturb.transfer import ReinhardTransfer, reference_stats

    if other is not None:
        src = reference_stats(photo[mask >= 0.5])
        ref = reference_stats(other[0][other[1] >= 0.5])
        r4 = lambda x: [round(float(v), 4) for v in x]  # noqa: E731
        return ReinhardTransfer(r4(src.lab_mean), r4(np.maximum(src.lab_std, 1.0)), r4(ref.lab_mean),
                                r4(np.maximum(ref.lab_std, 1.0)), round(float(rng.uniform(0.6, 1.0)), 4))
    return LabScale(round(float(rng.uniform(0.75, 1.25)), 4), round(float(rng.uniform(0.5, 1.5)), 4),
                    round(float(rng.uniform(0.5, 1.5)), 4))


def list_photo_sources(source: str | Path, split: str | None = "val") -> list[tuple[str, Path, Any]]:
    """``(id, image path, mask path or Lalonde .mat)`` of a source folder, sorted by id."""
    from harmonykit.data.lalonde import is_lalonde, scan_lalonde, split_of
    from harmonykit.io import IMAGE_EXTENSIONS

    root = Path(source)
    if is_lalonde(root):
        entries = [e for e in scan_lalonde(root).entries if not e.generated]
        if split is not None:
            entries = [e for e in entries if split_of(e.background) == split]
        return [(e.id, e.image_path, e.mask_path) for e in sorted(entries, key=lambda e: e.id)]
    if not root.is_dir():
        raise HarmonykitError(f"{root}: not a folder")
    items = []
    for p in sorted(root.iterdir()):
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.stem.endswith("_mask"):
            masks = sorted(q for q in root.glob(f"{p.stem}_mask.*") if q.suffix.lower() in IMAGE_EXTENSIONS)
            if masks:
                items.append((p.stem, p, masks[0]))
    if not items:
        raise HarmonykitError(f"{root}: no Lalonde-Efros onlineDb and no X.jpg + X_mask.png pairs")
    return items


def _read_pair(image: Path, mask: Any) -> tuple[np.ndarray, np.ndarray]:
    from harmonykit.io import read_image, read_mask

    rgb = read_image(image)
    if str(mask).endswith(".mat"):
        from harmonykit.data.lalonde import read_object_mask

        m = read_object_mask(mask, rgb.shape[:2]).astype(np.float32)
    else:
        m = read_mask(mask, rgb.shape[:2])
    return rgb, m


def _camera(rng: np.random.Generator, size: tuple[int, int], mask: np.ndarray,
            s: VideoBenchSettings) -> list[tuple[float, float, float, float]]:
    """Crop boxes ``(x0, y0, x1, y1)`` in photo pixels, one per frame."""
    h, w = mask.shape
    aspect = s.size[1] / s.size[0]
    bw = min(w, h * aspect) * 0.8
    bh = bw / aspect
    ys, xs = np.nonzero(mask >= 0.5)
    cx, cy = (float(xs.mean()), float(ys.mean())) if len(xs) else (w / 2, h / 2)
    angle = float(rng.uniform(0, 2 * np.pi))
    dx, dy = np.cos(angle) * s.pan * bw, np.sin(angle) * s.pan * bh
    boxes = []
    for i in range(s.frames):
        t = i / (s.frames - 1)
        z = 1.0 + s.zoom * t
        ww, hh = bw / z, bh / z
        x = min(max(cx + (t - 0.5) * dx, ww / 2), w - ww / 2)
        y = min(max(cy + (t - 0.5) * dy, hh / 2), h - hh / 2)
        boxes.append((x - ww / 2, y - hh / 2, x + ww / 2, y + hh / 2))
    return boxes


def _warp(image: np.ndarray, box: tuple[float, float, float, float], size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    mode = "F" if image.dtype == np.float32 else "RGB"
    im = Image.fromarray(image, mode)
    out = im.transform((size[1], size[0]), Image.Transform.EXTENT, box, Image.Resampling.BILINEAR)
    return np.asarray(out)


def render_clip(photo: np.ndarray, mask: np.ndarray, grade: Grade, boxes: list[tuple[float, float, float, float]],
                size: tuple[int, int]) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(composite, real, mask uint8)`` per frame: the photo and its graded copy moved by
    the camera, the composite blended by the moved soft mask."""
    graded = grade.apply(photo)
    for box in boxes:
        real = _warp(photo, box, size)
        moved = _warp(graded, box, size)
        m = np.clip(_warp(mask.astype(np.float32), box, size), 0.0, 1.0)[..., None]
        comp = np.clip(moved * m + real * (1.0 - m) + 0.5, 0, 255).astype(np.uint8)
        yield comp, real, np.clip(m[..., 0] * 255.0 + 0.5, 0, 255).astype(np.uint8)


def build_video_benchmark(source: str | Path, out: str | Path, settings: VideoBenchSettings | None = None,
                          limit: int | None = None, split: str | None = "val", clips: bool = True,
                          grade_factory: GradeFactory = default_grade, show_progress: bool | None = None) -> dict:
    """Build the clips of ``source`` into ``out`` (module docstring); returns the manifest.

    A photo whose object leaves the frame (under 0.5 % of a frame) is skipped (noted in
    the manifest). Finished clips are kept on a rerun (the manifest lists them again).
    """
    from harmonykit.io import atomic_write_bytes, atomic_write_text, encode_png
    from harmonykit.utils.progress import progress

    s = settings or VideoBenchSettings()
    out = Path(out)
    items = list_photo_sources(source, split)[: limit if limit else None]
    if not items:
        raise HarmonykitError(f"{source}: no photos with object masks (split {split})")
    manifest: dict[str, Any] = {"format": "harmonykit.video_benchmark", "version": 1, "source": str(source),
                                "split": split, "settings": asdict(s), "clips": [], "skipped": []}
    for k, (item_id, image, mask_path) in enumerate(progress(items, desc="video benchmark", unit="clip",
                                                             disable=None if show_progress else True)):
        rng = np.random.default_rng([s.seed, k])
        photo, mask = _read_pair(image, mask_path)
        nxt = items[(k + 1) % len(items)]
        other = _read_pair(nxt[1], nxt[2]) if len(items) > 1 else None
        grade = grade_factory(rng, photo, mask, other)
        boxes = _camera(rng, mask.shape, mask, s)
        frames = list(render_clip(photo, mask, grade, boxes, s.size))
        areas = [float(f[2].mean() / 255.0) for f in frames]
        if min(areas) < 0.005:
            manifest["skipped"].append({"id": item_id, "reason": "the object leaves the frame"})
            continue
        d = out / item_id
        for kind, idx in (("composite", 0), ("real", 1), ("mask", 2)):
            for i, f in enumerate(frames):
                atomic_write_bytes(d / kind / f"{i:04d}.png", encode_png(f[idx]))
        if clips:
            from harmonykit.io import atomic_write
            from harmonykit.video.io import VideoWriter

            for name, idx in (("composite.mp4", 0), ("mask.mp4", 2)):
                with atomic_write(d / name) as tmp:
                    w = VideoWriter(tmp, s.size[1], s.size[0], s.fps, crf=0 if idx == 2 else 12)
                    for f in frames:
                        w.write(f[idx] if f[idx].ndim == 3 else np.dstack([f[idx]] * 3))
                    w.close()
        manifest["clips"].append({"id": item_id, "image": str(image), "mask": str(mask_path), "frames": s.frames,
                                  "grade": grade.to_dict(), "camera": [[round(v, 3) for v in b] for b in boxes],
                                  "foreground_ratio": round(float(np.mean(areas)), 4)})
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    return manifest


def iter_benchmark_clips(bench: str | Path) -> Iterator[tuple[str, list[Path], list[Path], list[Path]]]:
    """``(id, composite frames, real frames, mask frames)`` of a built benchmark."""
    bench = Path(bench)
    try:
        manifest = json.loads((bench / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise HarmonykitError(f"{bench}: not a video benchmark (manifest.json: {exc})") from None
    for clip in manifest["clips"]:
        d = bench / clip["id"]
        lists = [sorted((d / kind).glob("*.png")) for kind in ("composite", "real", "mask")]
        if not lists[0] or len({len(x) for x in lists}) != 1:
            raise HarmonykitError(f"{d}: composite, real and mask frames are missing or differ in number")
        yield clip["id"], lists[0], lists[1], lists[2]
