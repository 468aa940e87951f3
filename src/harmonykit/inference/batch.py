"""Batches of photos for ``harmonykit harmonize``, in the library: the typed job
(:class:`HarmonizeJob`), input expansion, mask discovery, prefetching, writing (through the
output guard of :mod:`harmonykit.outputs`) and before / after figures.

The command line builds a :class:`HarmonizeJob` from its arguments once
(:meth:`HarmonizeJob.from_options`) and runs :func:`harmonize_item` per input; benchmarks and
other scripts import these helpers from here, never from the command line.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harmonykit.errors import HarmonykitError
from harmonykit.limits import WorkSize

if TYPE_CHECKING:
    import numpy as np

__all__ = ["HarmonizeJob", "MaskMode", "ItemError", "Prefetcher", "expand_inputs", "find_mask", "sibling_mask",
           "lalonde_composites", "lalonde_mask", "harmonize_item", "output_suffix", "write_output", "before_after",
           "display_size"]

#: where the masks come from: none, ``auto`` (next to each input), one file, a folder
MaskMode = Literal["none", "auto", "file", "dir"]


class ItemError(Exception):
    """A per-input problem whose message is already complete."""


@dataclass(frozen=True)
class HarmonizeJob:
    """What ``harmonykit harmonize`` does, validated once (built by :meth:`from_options`).

    Attributes:
        files: the inputs, in order, without duplicates; ``bad_items``: ``(item, reason)``
            for command-line items that name nothing usable.
        out_dir: the output folder; ``model``, ``device``; ``work_size``: the network input.
        mask_mode, mask_path: where the masks come from (:data:`MaskMode`; the file or folder).
        compare, save_masks, overwrite, format: the output options.
    """

    files: tuple[Path, ...]
    bad_items: tuple[tuple[str, str], ...]
    out_dir: Path
    model: str = "default"
    device: str = "cpu"
    work_size: WorkSize | None = WorkSize(256, 256)
    mask_mode: MaskMode = "none"
    mask_path: Path | None = None
    compare: bool = False
    save_masks: bool = False
    overwrite: bool = False
    format: str = "png"

    @classmethod
    def from_options(cls, inputs: list[str], out: str, *, mask: str | None = None, recursive: bool = False,
                     work_size: Any = 256, **options: Any) -> HarmonizeJob:
        """Expand the inputs and check the mask option (``auto``, a file for one input, a
        folder). Raises :class:`HarmonykitError` for an unusable ``mask`` or work size."""
        ws = WorkSize.of(work_size, "--work-size")
        files, bad = expand_inputs(inputs, recursive)
        mode: MaskMode = "none"
        path: Path | None = None
        if mask == "auto":
            mode = "auto"
        elif mask is not None:
            mp = Path(mask).expanduser()
            if mp.is_dir():
                mode, path = "dir", mp
            elif mp.is_file():
                mode, path = "file", mp
            else:
                raise HarmonykitError(f"--mask {mask}: no such file or folder (or 'auto' for <stem>_mask.* "
                                      "next to each input)")
        return cls(tuple(files), tuple(bad), Path(out).expanduser(), work_size=ws, mask_mode=mode, mask_path=path,
                   **options)

    def check_mask_option(self, mask: str | None) -> None:
        """A mask file needs exactly one input."""
        if self.mask_mode == "file" and len(self.files) + len(self.bad_items) != 1:
            raise HarmonykitError(f"--mask {mask} is a file but {len(self.files)} inputs were given; pass a folder of masks")

    def target(self, path: Path) -> Path:
        return self.out_dir / (path.stem + output_suffix(path, self.format))

    def check_outputs(self) -> None:
        """Before any work: the output folder is writable, and no output would replace an
        input image or mask (unless :attr:`overwrite`)."""
        from harmonykit.io import IMAGE_EXTENSIONS
        from harmonykit.outputs import check_writable, refuse_overwrite

        check_writable(self.out_dir, "--out")
        inputs: list[Path] = list(self.files)
        if self.mask_mode == "file" and self.mask_path is not None:
            inputs.append(self.mask_path)
        if self.mask_mode == "dir" and self.mask_path is not None:
            inputs.extend(p for p in self.mask_path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if self.mask_mode == "auto":
            inputs.extend(m for f in self.files if (m := sibling_mask(f)) is not None)
        outputs = []
        for f in self.files:
            stem = f.stem
            outputs.append(self.target(f))
            if self.save_masks:
                outputs += [self.out_dir / f"{stem}.masks.npz", self.out_dir / f"{stem}.masks.png"]
            if self.compare:
                outputs.append(self.out_dir / f"{stem}.compare.jpg")
        refuse_overwrite(outputs, inputs, allow=self.overwrite,
                         hint="choose another --out (or pass --overwrite to replace the inputs)")

    def find_mask(self, path: Path) -> Any:
        """Where the mask of ``path`` is by the mask option (a path, a Lalonde-Efros ``.mat``
        reader), or ``None`` when there is none (or no mask option)."""
        if self.mask_mode == "file":
            return self.mask_path
        if self.mask_mode == "auto":
            return sibling_mask(path) or _lalonde_mat(path)
        if self.mask_mode == "dir" and self.mask_path is not None:
            return find_mask(path, self.mask_path)
        return None

    def mask_for(self, harmonizer: Any, path: Path) -> Any:
        """The mask to pass for ``path``: a path, an array (Lalonde-Efros ``.mat``) or
        ``None``. The mask rule (:func:`harmonykit.pipeline.mask_decision`) decides before
        anything is read: a mask-free model gets none; a required mask that is not found
        raises :class:`ItemError` saying where it was looked for."""
        from harmonykit.pipeline import mask_decision

        if self.mask_mode == "none":
            return None  # a required mask: the path's own message (pass mask=... or --mask)
        stem = path.stem
        found = self.find_mask(path)
        decision = mask_decision(harmonizer.runner, found, name=harmonizer.name, coverage=False)
        if decision.status == "missing":
            if self.mask_mode == "auto":
                raise ItemError(f"no mask next to it ({stem}_mask.*) and {harmonizer.name} needs one")
            raise ItemError(f"no mask found in {self.mask_path} ({stem}_mask.* or {stem}.*)")
        if isinstance(decision.mask, _LalondeMat):
            return decision.mask.read()
        return decision.mask


@dataclass(frozen=True)
class _LalondeMat:
    """The ``.mat`` object mask of a Lalonde-Efros composite, read on use."""

    path: Path

    def read(self) -> Any:
        from harmonykit.data.lalonde import read_object_mask

        return read_object_mask(self.path)


def _lalonde_mat(image: Path) -> _LalondeMat | None:
    for table in _LALONDE_CACHE.values():
        if image in table:
            return _LalondeMat(table[image])
    return None


def harmonize_item(harmonizer: Any, job: HarmonizeJob, path: Path, image: Any, owners: dict[str, Path],
                   item: Any) -> Any:
    """Harmonize one input (``image``: its decoded pixels, :meth:`Prefetcher.take`) and write
    its outputs through ``item`` (an :class:`~harmonykit.outputs.ItemWrites`: all or none;
    the caller commits it); returns the :class:`~harmonykit.inference.Result`."""
    from harmonykit.io import write_image

    stem = path.stem
    target = job.target(path)
    if stem in owners:
        raise ItemError(f"output name {target.name} is already used by {owners[stem]}; rename one of them")
    owners[stem] = path
    mask = job.mask_for(harmonizer, path)
    result = harmonizer(image() if callable(image) else image, mask)
    item.write(target, lambda p: write_output(p, result.output, result.alpha))  # RGB(A), or L(A) for gray
    if job.save_masks and result.operator_masks is not None:
        h, w = result.size
        from harmonykit.mask_metadata import mask_metadata

        meta = mask_metadata(image_size=(h, w), source=path, model=harmonizer.name, work_size=harmonizer.work_size)
        item.write(job.out_dir / f"{stem}.masks.npz", lambda p: result.operator_masks.save(p, metadata=meta))
        hm = result.operator_masks.heatmaps(size=display_size(h, w))
        item.write(job.out_dir / f"{stem}.masks.png", lambda p: write_image(p, hm.grid))
    if job.compare:
        cmp_path = job.out_dir / f"{stem}.compare.jpg"
        figure = before_after(result.input_rgb, result.rgb, "after" + (" (with mask)" if result.mask_used else ""))
        item.write(cmp_path, lambda p: write_image(p, figure))
    return result


_GLOB_CHARS = set("*?[")


def lalonde_composites(folder: Path) -> dict[Path, Path]:
    """The real composites of a Lalonde-Efros ``onlineDb`` folder, image -> its ``.mat``
    mask (empty for any other folder). Listed once per folder."""
    key = folder.resolve()
    if key not in _LALONDE_CACHE:
        from harmonykit.data.lalonde import is_lalonde, scan_lalonde

        _LALONDE_CACHE[key] = (
            {e.image_path: e.mask_path for e in scan_lalonde(folder).entries if e.generated}
            if is_lalonde(folder) else {}
        )
    return _LALONDE_CACHE[key]


_LALONDE_CACHE: dict[Path, dict[Path, Path]] = {}


def expand_inputs(items: list[str], recursive: bool = False) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files to process (in order, without duplicates) and ``(item, reason)`` for items
    that name nothing usable."""
    from harmonykit.io import READABLE_EXTENSIONS, list_images

    files: list[Path] = []
    bad: list[tuple[str, str]] = []
    for item in items:
        if not item.strip():  # Path("") is the current folder: an empty argument names nothing
            bad.append((repr(item), "an empty input name (an unset shell variable?)"))
            continue
        p = Path(item).expanduser()
        if p.is_dir() and lalonde_composites(p):
            files.extend(sorted(lalonde_composites(p)))
        elif p.is_dir():
            found = list_images(p, recursive=recursive, extensions=READABLE_EXTENSIONS)
            stems = {(f.parent, f.stem) for f in found}
            kept = [f for f in found if not (f.stem.endswith("_mask") and (f.parent, f.stem[: -len("_mask")]) in stems)]
            if not kept:
                bad.append((item, "folder contains no images"))
            files.extend(kept)
        elif p.exists():
            files.append(p)
        elif _GLOB_CHARS & set(item):
            matches = sorted(Path(m) for m in glob.glob(str(p), recursive=True))
            matches = [m for m in matches if m.is_file() and m.suffix.lower() in READABLE_EXTENSIONS]
            stems = {(m.parent, m.stem) for m in matches}
            matches = [m for m in matches
                       if not (m.stem.endswith("_mask") and (m.parent, m.stem[: -len("_mask")]) in stems)]
            if not matches:
                bad.append((item, "pattern matches no image files"))
            files.extend(matches)
        else:
            bad.append((item, "no such file or folder"))
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, bad


def find_mask(image: Path, mask_dir: Path) -> Path | None:
    """The mask of ``image`` in ``mask_dir``: ``<stem>_mask.*`` first, then ``<stem>.*``
    (never the image itself)."""
    from harmonykit.io import IMAGE_EXTENSIONS

    image_key = image.resolve()
    for pattern in (f"{image.stem}_mask", image.stem):
        cands = sorted(
            p for p in mask_dir.iterdir()
            if p.is_file() and p.stem == pattern and p.suffix.lower() in IMAGE_EXTENSIONS and p.resolve() != image_key
        )
        if cands:
            return cands[0]
    return None


def lalonde_mask(image: Path) -> Any:
    """The ``objMask`` of a Lalonde-Efros composite listed by :func:`lalonde_composites`."""
    mat = _lalonde_mat(image)
    return None if mat is None else mat.read()


def sibling_mask(image: Path) -> Path | None:
    """``<stem>_mask.*`` next to ``image`` (``--mask auto``), or ``None``."""
    from harmonykit.io import IMAGE_EXTENSIONS

    cands = sorted(p for p in image.parent.glob(f"{glob.escape(image.stem)}_mask.*")
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    return cands[0] if cands else None


class Prefetcher:
    """Decodes the next input on a background thread while the current one is processed
    (and the first one while PyTorch is imported): decoding releases the GIL."""

    def __init__(self, files: list[Path]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._files = list(files)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="harmonykit-read")
        self._pending: dict[Path, Any] = {}
        self._next = 0
        self._submit()

    def _submit(self) -> None:
        from harmonykit.io import read_image_with_mode

        if self._next < len(self._files):
            path = self._files[self._next]
            self._next += 1
            self._pending[path] = self._pool.submit(read_image_with_mode, path)

    def take(self, path: Path) -> Any:
        """The decoded ``path``: ``(H, W, 3)`` uint8, or ``(H, W, 4)`` with its alpha; for
        grayscale files an ``L`` / ``LA`` PIL image (so the result stays gray); read errors
        are raised here. Starts decoding the next file."""
        import numpy as np

        future = self._pending.pop(path, None)
        self._submit()
        if future is None:  # not in the prefetched order
            from harmonykit.io import read_image_with_mode

            rgb, alpha, gray = read_image_with_mode(path)
        else:
            rgb, alpha, gray = future.result()
        if gray:
            from PIL import Image

            g = np.ascontiguousarray(rgb[..., 0])
            return Image.fromarray(g, "L") if alpha is None else Image.fromarray(np.dstack([g, alpha]), "LA")
        return rgb if alpha is None else np.dstack([rgb, alpha])

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


_SAME_SUFFIXES = {".jpg": ".jpg", ".jpeg": ".jpg", ".png": ".png", ".webp": ".webp", ".tif": ".tif",
                  ".tiff": ".tif", ".bmp": ".bmp"}


def output_suffix(path: Path, fmt: str) -> str:
    """``.png``, ``.jpg``, or for ``same`` the input's type (``.png`` for others)."""
    if fmt == "same":
        return _SAME_SUFFIXES.get(path.suffix.lower(), ".png")
    return ".jpg" if fmt == "jpg" else ".png"


def write_output(path: Path, rgb: Any, alpha: Any) -> None:
    """Write a result atomically: PNG with :func:`harmonykit.png.encode_png_fast` (zlib on
    several threads), other types with :func:`harmonykit.io.write_image` (JPEG quality 95)."""
    from harmonykit.io import atomic_write_bytes, write_image

    if path.suffix == ".png":
        from harmonykit.png import encode_png_fast

        atomic_write_bytes(path, encode_png_fast(rgb, alpha))
    else:
        write_image(path, rgb, alpha)


def before_after(before: np.ndarray, after: np.ndarray, after_label: str = "after", side: int = 768) -> np.ndarray:
    """``before | after`` side by side, each scaled to at most ``side`` pixels on its longer
    side, under a white strip with the labels ``before`` and ``after_label``.

    >>> import numpy as np
    >>> before_after(np.zeros((10, 20, 3), np.uint8), np.zeros((10, 20, 3), np.uint8)).shape
    (30, 44, 3)
    """
    import numpy as np
    from PIL import Image, ImageDraw

    from harmonykit.inference.editing import downscale

    b, a = downscale(before, side), downscale(after, side)
    h, w = b.shape[:2]
    gap, strip = 4, 20
    canvas = Image.new("RGB", (2 * w + gap, h + strip), (255, 255, 255))
    canvas.paste(Image.fromarray(b), (0, strip))
    canvas.paste(Image.fromarray(a), (w + gap, strip))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 4), "before", fill=(0, 0, 0))
    draw.text((w + gap + 4, 4), after_label, fill=(0, 0, 0))
    return np.asarray(canvas)


def display_size(h: int, w: int, side: int = 256) -> tuple[int, int]:
    s = side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))
