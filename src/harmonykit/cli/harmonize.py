"""``harmonykit harmonize``: harmonize photos at full resolution.

Exit status (the rule of every command, see :mod:`harmonykit.errors`): 0 when every input
was harmonized; 2 for a user mistake: found before any work (no usable input, unknown
model, damaged model, bad option, an unwritable --out, an output that would replace an
input; the model is not loaded), or bad inputs / failed writes in a batch (each reported
as ``FILE: reason`` and skipped, the others still written); 1 when an input failed for an
internal reason (out of memory, a non-finite model output, a bug).

An item's files (the image, its masks, its figure) are on disk whole or not at all: when
one of its writes fails (disk full), those already written are removed, so the summary's
count is what is on disk.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

HELP = "harmonize photos at full resolution (optionally save the operator masks)"
DESCRIPTION = """\
Harmonize INPUT images (files, folders or glob patterns) and write OUT/<stem>.png at each
input's size. The network runs at --work-size; its operator masks (or its change, for RGB
models) are applied to the full-resolution photo. EXIF orientation is honoured; PNG alpha
is kept.

MODEL (--model): a packaged model name (default: 'default'), a model folder
(config.json + model.safetensors), a training run folder, or a baseline: identity,
reinhard, histogram.

Masks (--mask): 'auto' (the mask of 'dir/photo.jpg' is 'dir/photo_mask.*' next to it;
inputs without one are harmonized mask-free), a mask file (one input), or a folder where
the mask of 'photo.jpg' is 'photo_mask.*' or 'photo.*' (any image type; 3-channel JPEG
masks are fine). Models that require a mask (SRIN) and the reinhard/histogram baselines
fail for inputs without one; mask-free models ignore masks. Files named '*_mask.*' next to
an image of the same stem are masks, never inputs.

Results never replace inputs: an output path that is one of the inputs (images or masks,
e.g. '--out' the inputs' own folder with PNG inputs) is refused before any work (exit 2);
--overwrite allows it. The output folder is checked for writing before the model loads.

A mask that covers nothing (every value <= 1%) or everything (every value >= 99%) is
reported with a warning naming the file; the input is then harmonized mask-free, or, for
models that need a mask, fails (docs/inference.md, "Masks that cover nothing or
everything").

--compare writes OUT/<stem>.compare.jpg: the input and the result side by side, labelled
'before' and 'after' (the paths are printed).

--save-masks writes OUT/<stem>.masks.npz (edit them with 'harmonykit edit') and
OUT/<stem>.masks.png (heatmaps: white = no change, red = positive, blue = negative; the
scale of each map is printed on it).

Clips (INPUT ending in .mp4, .mov, .mkv, .webm, .avi; PyAV needed: pip install
"harmonykit[video]"): every frame is harmonized at --work-size, the operator masks (and,
mask-free, the localisation) are smoothed over time (an EMA, --smoothing, reset at scene
cuts, --cut-threshold) and applied at full resolution; OUT/<stem>.mp4 keeps the frame
rate, size and audio. --mask: a mask clip (same size and length), one mask image for every
frame, a folder of per-frame masks, or 'auto' (<stem>_mask.mp4 / <stem>_mask.png /
<stem>_masks/ next to the clip). --save-masks writes OUT/<stem>.masks.npz (all frames).

examples:
  harmonykit harmonize photo.jpg --out results
  harmonykit harmonize clip.mp4 --mask clip_mask.mp4 --out results --save-masks
  harmonykit edit clip.mp4 --masks results/clip.masks.npz --gain l_add=1.5 --out clip_brighter.mp4
  harmonykit harmonize examples/cat.png --mask auto --compare --out results
  harmonykit harmonize shots/ 'more/*.png' --out results --save-masks
  harmonykit harmonize composites/ --mask composites/ --model runs/srin --out results
  harmonykit edit photo.jpg --masks results/photo.masks.npz --gain l_add=1.5 --out photo_brighter.png
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    parser.add_argument("--model", default="default", metavar="MODEL",
                        help="packaged name, model folder, run folder or baseline (default: default)")
    parser.add_argument("--mask", default=None, metavar="auto|PATH|DIR",
                        help="'auto' (<stem>_mask.* next to each input; for a Lalonde-Efros onlineDb folder, the "
                             "composites' own .mat masks), a mask file (single input) or a folder "
                             "of masks matched by stem (<stem>_mask.* or <stem>.*)")
    parser.add_argument("--compare", action="store_true",
                        help="also write <stem>.compare.jpg: before | after, side by side")
    parser.add_argument("--save-masks", action="store_true",
                        help="also write <stem>.masks.npz and <stem>.masks.png (operator-mask models)")
    parser.add_argument("--work-size", type=int, default=256, metavar="N",
                        help="network input size in pixels (square, 16..2048, default 256)")
    parser.add_argument("--overwrite", action="store_true",
                        help="let results replace input files of the same name (refused by default)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--recursive", action="store_true", help="search input folders recursively")
    parser.add_argument("--format", default="png", choices=("png", "jpg", "same"),
                        help="output format: png (default: lossless, alpha kept), jpg (quality 95, alpha dropped) "
                             "or same (the input's type: JPEG in -> JPEG out)")
    from harmonykit.cli.harmonize_video import add_video_arguments

    add_video_arguments(parser)


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


def _lalonde_mask(image: Path) -> Any:
    """The ``objMask`` of a Lalonde-Efros composite listed by :func:`lalonde_composites`."""
    for table in _LALONDE_CACHE.values():
        if image in table:
            from harmonykit.data.lalonde import read_object_mask

            return read_object_mask(table[image])
    return None


def sibling_mask(image: Path) -> Path | None:
    """``<stem>_mask.*`` next to ``image`` (``--mask auto``), or ``None``."""
    from harmonykit.io import IMAGE_EXTENSIONS

    cands = sorted(p for p in image.parent.glob(f"{glob.escape(image.stem)}_mask.*")
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    return cands[0] if cands else None


def run(args: argparse.Namespace) -> int:
    from harmonykit.errors import HarmonykitError
    from harmonykit.limits import check

    check("work_size", args.work_size, "--work-size")
    files, bad_items = expand_inputs(args.inputs, args.recursive)
    from harmonykit.video.io import is_video_path

    clips = [f for f in files if is_video_path(f)]
    if clips:
        if bad_items:
            raise HarmonykitError("; ".join(f"{item}: {reason}" for item, reason in bad_items))
        if len(clips) != len(files):
            raise HarmonykitError("the inputs mix clips and photos: harmonize them in separate runs")
        from harmonykit.cli.harmonize_video import run_clips

        return run_clips(args, clips)
    if not files:  # nothing to do: one error, before the model is loaded
        if not bad_items:
            raise HarmonykitError("no inputs")
        raise HarmonykitError("; ".join(f"{item}: {reason}" for item, reason in bad_items))
    mask_file: Path | None = None
    mask_dir: Path | None = None
    args.mask_auto = args.mask == "auto"
    if args.mask is not None and not args.mask_auto:
        mp = Path(args.mask).expanduser()
        if mp.is_dir():
            mask_dir = mp
        elif mp.is_file():
            if len(files) + len(bad_items) != 1:
                raise HarmonykitError(f"--mask {args.mask} is a file but {len(files)} inputs were given; pass a folder of masks")
            mask_file = mp
        else:
            raise HarmonykitError(f"--mask {args.mask}: no such file or folder (or 'auto' for <stem>_mask.* "
                                  "next to each input)")
    out_dir = Path(args.out).expanduser()
    _check_outputs(files, out_dir, mask_file, mask_dir, args)  # before the model loads
    _check_model_spec(args.model)  # a mistyped --model fails here, before PyTorch is imported
    # decode the first input(s) on another thread while PyTorch is imported and the model loaded
    args.prefetch = _Prefetcher(files)
    from harmonykit.inference import Harmonizer

    harmonizer = Harmonizer.from_pretrained(args.model, device=args.device, work_size=args.work_size)
    from harmonykit.io import remove_stale_temp_files
    from harmonykit.outputs import remove_if_created_empty

    existed = out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    removed = remove_stale_temp_files(out_dir)  # what a killed run left (SIGKILL, power loss)
    if removed:
        print(f"note: removed {len(removed)} temporary file(s) an interrupted run left in {out_dir}", file=sys.stderr)
    try:
        with _clean_exit_on_sigterm(out_dir):
            return _process(harmonizer, files, bad_items, out_dir, mask_file, mask_dir, args)
    finally:  # every input failed: no empty folder is left behind
        remove_if_created_empty(out_dir, existed)


def _check_outputs(files: list[Path], out_dir: Path, mask_file: Path | None, mask_dir: Path | None,
                   args: argparse.Namespace) -> None:
    """Before any work: ``out_dir`` is writable, and no output would replace an input image
    or mask (unless ``--overwrite``)."""
    from harmonykit.io import IMAGE_EXTENSIONS
    from harmonykit.outputs import check_writable, refuse_overwrite

    check_writable(out_dir, "--out")
    inputs: list[Path] = list(files)
    if mask_file is not None:
        inputs.append(mask_file)
    if mask_dir is not None:
        inputs.extend(p for p in mask_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if args.mask_auto:
        inputs.extend(m for f in files if (m := sibling_mask(f)) is not None)
    outputs = []
    for f in files:
        stem = f.stem
        outputs.append(out_dir / (stem + _output_suffix(f, args.format)))
        if args.save_masks:
            outputs += [out_dir / f"{stem}.masks.npz", out_dir / f"{stem}.masks.png"]
        if args.compare:
            outputs.append(out_dir / f"{stem}.compare.jpg")
    refuse_overwrite(outputs, inputs, allow=args.overwrite,
                     hint="choose another --out (or pass --overwrite to replace the inputs)")


@contextlib.contextmanager
def _clean_exit_on_sigterm(out_dir: Path) -> Iterator[None]:
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


def _process(harmonizer, files, bad_items, out_dir, mask_file, mask_dir, args) -> int:
    from harmonykit.errors import HarmonykitError, batch_exit_code
    from harmonykit.outputs import ItemWrites
    from harmonykit.utils.progress import progress

    failures: list[tuple[str, str]] = list(bad_items)
    internal = 0  # failures not caused by the input (out of memory, a bug)
    for item, reason in bad_items:
        print(f"harmonykit harmonize: error: {item}: {reason}", file=sys.stderr)
    _announce(harmonizer, files, mask_file, mask_dir, args)
    compares: list[Path] = []
    owners: dict[str, Path] = {}
    done = 0
    totals = {"network": 0.0, "apply": 0.0, "total": 0.0}
    t_all = time.perf_counter()
    bar = progress(files, desc="harmonize", unit="img")
    for path in bar:
        item = ItemWrites()
        try:
            result = _harmonize_one(harmonizer, path, out_dir, mask_file, mask_dir, args, owners, compares, item)
            for k in totals:
                totals[k] += result.timings.get(k, 0.0)
            done += 1
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # one bad file must not stop the batch
            item.discard()  # an item is on disk whole or not at all: the count below is what is there
            reason = str(exc) if isinstance(exc, _ItemError) else _describe(exc, path)
            if not isinstance(exc, (_ItemError, HarmonykitError)):
                internal += 1
            failures.append((str(path), reason))
            bar.write(f"harmonykit harmonize: error: {path}: {reason}", file=sys.stderr)
    elapsed = time.perf_counter() - t_all
    print(f"wrote {done} image(s) to {out_dir} in {elapsed:.1f} s"
          + (f" (mean per image: network {totals['network'] / done:.2f} s, full-res apply "
             f"{totals['apply'] / done:.2f} s, total {totals['total'] / done:.2f} s)" if done else ""),
          file=sys.stderr)
    for cmp_path in compares:
        print(f"before/after: {cmp_path}", file=sys.stderr)
    if failures:  # each was reported above with its reason
        print(f"harmonykit harmonize: {len(failures)} of {len(files) + len(bad_items)} input(s) failed: "
              + ", ".join(item for item, _ in failures), file=sys.stderr)
        return batch_exit_code(len(failures) - internal, internal)
    return 0


def _announce(harmonizer, files, mask_file, mask_dir, args) -> None:
    """The notes printed before the batch: ignored or unused masks, the model line."""
    uses_mask = harmonizer.mask_use != "never"
    if (mask_file or mask_dir or args.mask_auto) and not uses_mask:
        print(f"note: {harmonizer.name} does not use masks; --mask is ignored", file=sys.stderr)
    if args.mask is None and uses_mask:
        found = [(f, m) for f in files if (m := sibling_mask(f)) is not None]
        if found:
            f, m = found[0]
            print(f"note: {m} looks like the mask of {f.name}"
                  + (f" (and {len(found) - 1} more)" if len(found) > 1 else "")
                  + "; pass --mask auto to use the masks next to the inputs", file=sys.stderr)
    if args.save_masks and harmonizer.kind != "operator":
        print(f"note: {harmonizer.name} has no operator masks; --save-masks is ignored", file=sys.stderr)
    print(f"model: {harmonizer.name} ({harmonizer.kind}, mask {harmonizer.mask_use}), work size "
          f"{harmonizer.work_size[0] if harmonizer.work_size else 'full'}, device {harmonizer.device}", file=sys.stderr)


def _mask_of(harmonizer, path: Path, mask_file, mask_dir, args) -> Any:
    """The mask to pass for ``path`` (``None``: none; a model that needs one raises)."""
    if harmonizer.mask_use == "never":
        return None
    stem = path.stem
    if mask_file is not None:
        return mask_file
    if args.mask_auto:
        mask = sibling_mask(path) or _lalonde_mask(path)
        if mask is None and harmonizer.mask_use == "required":
            raise _ItemError(f"no mask next to it ({stem}_mask.*) and {harmonizer.name} needs one")
        return mask
    if mask_dir is not None:
        mask = find_mask(path, mask_dir)
        if mask is None and harmonizer.mask_use == "required":
            raise _ItemError(f"no mask found in {mask_dir} ({stem}_mask.* or {stem}.*)")
        return mask
    return None


def _harmonize_one(harmonizer, path: Path, out_dir: Path, mask_file, mask_dir, args,
                   owners: dict[str, Path], compares: list[Path], item: Any) -> Any:
    """Harmonize one input and write its outputs (through ``item``, an
    :class:`~harmonykit.outputs.ItemWrites`); returns the :class:`Result`."""
    from harmonykit.io import write_image

    stem = path.stem
    target = out_dir / (stem + _output_suffix(path, args.format))
    if stem in owners:
        raise _ItemError(f"output name {target.name} is already used by {owners[stem]}; rename one of them")
    owners[stem] = path
    mask = _mask_of(harmonizer, path, mask_file, mask_dir, args)
    result = harmonizer(args.prefetch.take(path), mask)
    item.write(target, lambda p: _write_output(p, result.output, result.alpha))  # RGB(A), or L(A) for gray
    if args.save_masks and result.operator_masks is not None:
        h, w = result.size
        from harmonykit.mask_metadata import mask_metadata

        meta = mask_metadata(image_size=(h, w), source=path, model=harmonizer.name, work_size=harmonizer.work_size)
        item.write(out_dir / f"{stem}.masks.npz", lambda p: result.operator_masks.save(p, metadata=meta))
        hm = result.operator_masks.heatmaps(size=_display_size(h, w))
        item.write(out_dir / f"{stem}.masks.png", lambda p: write_image(p, hm.grid))
    if args.compare:
        cmp_path = out_dir / f"{stem}.compare.jpg"
        figure = before_after(result.input_rgb, result.rgb, "after" + (" (with mask)" if result.mask_used else ""))
        item.write(cmp_path, lambda p: write_image(p, figure))
        compares.append(cmp_path)
    return result


def _check_model_spec(spec: str) -> None:
    """Raise the error :meth:`Harmonizer.from_pretrained` would raise for a ``--model`` that
    names nothing loadable, without importing PyTorch (which takes seconds): the same
    :func:`harmonykit.runners.spec.locate`. Specs that may load are left to ``from_pretrained``."""
    from harmonykit.runners.spec import locate  # no PyTorch

    locate(spec)


class _Prefetcher:
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


def _output_suffix(path: Path, fmt: str) -> str:
    """``.png``, ``.jpg``, or for ``same`` the input's type (``.png`` for others)."""
    if fmt == "same":
        return _SAME_SUFFIXES.get(path.suffix.lower(), ".png")
    return ".jpg" if fmt == "jpg" else ".png"


def _write_output(path: Path, rgb: Any, alpha: Any) -> None:
    """Write a result atomically: PNG with :func:`harmonykit.png.encode_png_fast` (zlib on
    several threads), other types with :func:`harmonykit.io.write_image` (JPEG quality 95)."""
    from harmonykit.io import atomic_write_bytes, write_image

    if path.suffix == ".png":
        from harmonykit.png import encode_png_fast

        atomic_write_bytes(path, encode_png_fast(rgb, alpha))
    else:
        write_image(path, rgb, alpha)


class _ItemError(Exception):
    """A per-input problem whose message is already complete."""


def _describe(exc: Exception, path: Path) -> str:
    from harmonykit.errors import HarmonykitError, ImageReadError

    if isinstance(exc, ImageReadError):
        return exc.reason if exc.path == str(path) else str(exc)
    if isinstance(exc, HarmonykitError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory (try a smaller image or --device cpu)"
    return f"{type(exc).__name__}: {exc}"


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


def _display_size(h: int, w: int, side: int = 256) -> tuple[int, int]:
    s = side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))
