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
import sys
import time
from pathlib import Path
from typing import Any

from harmonykit.cli.common import check_model_spec, clean_exit_on_sigterm

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


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from harmonykit.errors import HarmonykitError
    from harmonykit.inference.batch import HarmonizeJob, Prefetcher
    from harmonykit.limits import check

    check("work_size", args.work_size, "--work-size")
    from harmonykit.video.io import is_video_path

    job = HarmonizeJob.from_options(
        args.inputs, args.out, mask="auto" if args.mask == "auto" else None, recursive=args.recursive,
        work_size=args.work_size, model=args.model, device=args.device, compare=args.compare,
        save_masks=args.save_masks, overwrite=args.overwrite, format=args.format)
    files, bad_items = list(job.files), list(job.bad_items)
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
    if args.mask is not None and args.mask != "auto":  # a mask file or folder, checked after the inputs
        given = HarmonizeJob.from_options([], args.out, mask=args.mask)
        job = dataclasses.replace(job, mask_mode=given.mask_mode, mask_path=given.mask_path)
        job.check_mask_option(args.mask)
    job.check_outputs()  # before the model loads
    check_model_spec(job.model)  # a mistyped --model fails here, before PyTorch is imported
    # decode the first input(s) on another thread while PyTorch is imported and the model loaded
    prefetch = Prefetcher(files)
    from harmonykit.inference import Harmonizer

    harmonizer = Harmonizer.from_pretrained(job.model, device=job.device, work_size=job.work_size)
    from harmonykit.io import remove_stale_temp_files
    from harmonykit.outputs import remove_if_created_empty

    out_dir = job.out_dir
    existed = out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    removed = remove_stale_temp_files(out_dir)  # what a killed run left (SIGKILL, power loss)
    if removed:
        print(f"note: removed {len(removed)} temporary file(s) an interrupted run left in {out_dir}", file=sys.stderr)
    try:
        with clean_exit_on_sigterm(out_dir):
            return _process(harmonizer, job, prefetch, args.mask)
    finally:  # every input failed: no empty folder is left behind
        remove_if_created_empty(out_dir, existed)





def _process(harmonizer: Any, job: Any, prefetch: Any, mask_option: str | None) -> int:
    from harmonykit.errors import HarmonykitError, batch_exit_code
    from harmonykit.inference.batch import ItemError, harmonize_item
    from harmonykit.outputs import ItemWrites
    from harmonykit.utils.progress import progress

    files, out_dir = list(job.files), job.out_dir
    failures: list[tuple[str, str]] = list(job.bad_items)
    internal = 0  # failures not caused by the input (out of memory, a bug)
    for item, reason in job.bad_items:
        print(f"harmonykit harmonize: error: {item}: {reason}", file=sys.stderr)
    _announce(harmonizer, job, mask_option)
    compares: list[Path] = []
    owners: dict[str, Path] = {}
    done = 0
    totals = {"network": 0.0, "apply": 0.0, "total": 0.0}
    t_all = time.perf_counter()
    bar = progress(files, desc="harmonize", unit="img")
    for path in bar:
        item = ItemWrites()
        try:
            result = harmonize_item(harmonizer, job, path, lambda p=path: prefetch.take(p), owners, item)
            written = item.commit()  # every file of the item is written: now they replace the previous ones
            compares.extend(p for p in written if p.name.endswith(".compare.jpg"))
            for k in totals:
                totals[k] += result.timings.get(k, 0.0)
            done += 1
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # one bad file must not stop the batch
            item.discard()  # nothing of a failed item is in place: the count below is what is there
            reason = str(exc) if isinstance(exc, ItemError) else _describe(exc, path)
            if not isinstance(exc, (ItemError, HarmonykitError)):
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
        print(f"harmonykit harmonize: {len(failures)} of {len(files) + len(job.bad_items)} input(s) failed: "
              + ", ".join(item for item, _ in failures), file=sys.stderr)
        return batch_exit_code(len(failures) - internal, internal)
    return 0


def _announce(harmonizer: Any, job: Any, mask_option: str | None) -> None:
    """The notes printed before the batch: ignored or unused masks, the model line."""
    from harmonykit.inference.batch import sibling_mask
    from harmonykit.pipeline import mask_decision

    if job.mask_mode != "none" and mask_decision(harmonizer.runner, "--mask", coverage=False).status == "ignored":
        print(f"note: {harmonizer.name} does not use masks; --mask is ignored", file=sys.stderr)
    if mask_option is None and harmonizer.mask_use != "never":
        found = [(f, m) for f in job.files if (m := sibling_mask(f)) is not None]
        if found:
            f, m = found[0]
            print(f"note: {m} looks like the mask of {f.name}"
                  + (f" (and {len(found) - 1} more)" if len(found) > 1 else "")
                  + "; pass --mask auto to use the masks next to the inputs", file=sys.stderr)
    if job.mask_mode in ("dir", "auto") and harmonizer.mask_use == "optional":
        # an optional mask that is not found means mask-free: say so, naming the inputs
        missing = [f.name for f in job.files if job.find_mask(f) is None]
        if missing:
            names = ", ".join(missing[:5]) + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else "")
            where = f"in {job.mask_path} for {names}" if job.mask_mode == "dir" else f"next to {names}"
            print(f"note: no mask {where}: harmonized without a mask", file=sys.stderr)
    if job.save_masks and harmonizer.kind != "operator":
        print(f"note: {harmonizer.name} has no operator masks; --save-masks is ignored", file=sys.stderr)
    print(f"model: {harmonizer.name} ({harmonizer.kind}, mask {harmonizer.mask_use}), work size "
          f"{harmonizer.work_size[0] if harmonizer.work_size else 'full'}, device {harmonizer.device}", file=sys.stderr)



def _describe(exc: Exception, path: Path) -> str:
    from harmonykit.errors import HarmonykitError, ImageReadError

    if isinstance(exc, ImageReadError):
        return exc.reason if exc.path == str(path) else str(exc)
    if isinstance(exc, HarmonykitError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory (try a smaller image or --device cpu)"
    return f"{type(exc).__name__}: {exc}"




#: the batch logic lives in the library (:mod:`harmonykit.inference.batch`); these names stay
#: importable from here (loaded on first use: importing this module does not import PyTorch)
_MOVED = ("before_after", "expand_inputs", "find_mask", "sibling_mask", "lalonde_composites")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from harmonykit.inference import batch

        return getattr(batch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
