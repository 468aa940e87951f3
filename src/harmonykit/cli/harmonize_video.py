"""``harmonykit harmonize CLIP.mp4 ...`` and ``harmonykit edit CLIP.mp4 ...``: the clip
paths of the two commands (chosen when the inputs are clips, :data:`VIDEO_EXTENSIONS`).

Each clip is written to ``OUT/<stem>.mp4`` (``.mkv`` / ``.mov`` sources keep their
container) through a temporary file renamed at the end; ``--save-masks`` adds
``OUT/<stem>.masks.npz`` (per-frame operator masks, a frame axis). A bad clip (corrupt
frame, mask of another size or length) is one error and writes nothing; the other clips
of the run are still done.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harmonykit.video import VideoHarmonizer

__all__ = ["add_video_arguments", "run_clips", "run_edit_clip"]


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    """The clip options of ``harmonize``."""
    from harmonykit.video.settings import (
        DEFAULT_CUT_THRESHOLD,
        DEFAULT_NETWORK_EVERY,
        DEFAULT_SMOOTHING,
    )

    group = parser.add_argument_group("clips (INPUT is a .mp4, .mov, .mkv, .webm or .avi file)")
    group.add_argument("--smoothing", type=float, default=DEFAULT_SMOOTHING, metavar="A",
                       help=f"temporal smoothing of the operator masks and the localisation: EMA decay in [0, 1) "
                            f"(default {DEFAULT_SMOOTHING}; 0 = frames independent)")
    group.add_argument("--cut-threshold", type=float, default=DEFAULT_CUT_THRESHOLD, metavar="D",
                       help="colour-histogram distance between consecutive frames that counts as a scene cut and "
                            f"resets the smoothing (default {DEFAULT_CUT_THRESHOLD})")
    group.add_argument("--network-every", type=int, default=None, metavar="N",
                       help="run the network on every Nth frame only; the frames between re-apply the smoothed "
                            f"operator masks with their own mask (speed; default {DEFAULT_NETWORK_EVERY} with "
                            "smoothing, 1 without; 1 = every frame, range 1..30)")
    group.add_argument("--crf", type=int, default=18, metavar="Q",
                       help="x264 quality of the output clip (0 lossless .. 51; default 18)")


def _output_path(clip: Path, out_dir: Path) -> Path:
    suffix = clip.suffix.lower() if clip.suffix.lower() in (".mkv", ".mov") else ".mp4"
    return out_dir / f"{clip.stem}{suffix}"


def run_clips(args: argparse.Namespace, clips: list[Path]) -> int:
    """Harmonize every clip of ``clips`` (see the module docstring); the exit status."""
    from harmonykit.errors import HarmonykitError
    from harmonykit.video.io import require_av

    require_av()
    from harmonykit.limits import check
    from harmonykit.video.settings import resolve_network_every

    check("smoothing", args.smoothing, "--smoothing")
    args.network_every = resolve_network_every(args.network_every, args.smoothing)
    check("network_every", args.network_every, "--network-every")
    check("cut_threshold", args.cut_threshold, "--cut-threshold")
    check("crf", args.crf, "--crf")
    if args.network_every > 1 and args.smoothing == 0:
        raise HarmonykitError("--network-every > 1 needs --smoothing > 0 (the smoothed masks are re-applied)")
    if args.compare:
        print("note: --compare applies to photos; it is ignored for clips", file=sys.stderr)
    mask_arg = args.mask
    if mask_arg not in (None, "auto") and len(clips) != 1:
        raise HarmonykitError(f"--mask {mask_arg} is the mask of one clip but {len(clips)} clips were given; use "
                              "--mask auto (<stem>_mask.mp4, <stem>_mask.png or <stem>_masks/ next to each clip)")
    out_dir = Path(args.out).expanduser()
    _check_outputs(args, clips, out_dir, mask_arg)  # before the model loads
    from harmonykit.cli.common import check_model_spec

    check_model_spec(args.model)
    from harmonykit.video import VideoHarmonizer

    vh = VideoHarmonizer.from_pretrained(args.model, smoothing=args.smoothing, cut_threshold=args.cut_threshold,
                                         network_every=args.network_every, device=args.device,
                                         work_size=args.work_size)
    for note in vh.notes:
        print(f"note: {note}", file=sys.stderr)
    h = vh.harmonizer
    print(f"model: {h.name} ({h.kind}, mask {h.mask_use}), work size {args.work_size}, smoothing "
          f"{args.smoothing if vh.smooths else 'off'}, device {h.device}", file=sys.stderr)
    existed = out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    from harmonykit.io import remove_stale_temp_files
    from harmonykit.outputs import remove_if_created_empty

    removed = remove_stale_temp_files(out_dir)
    if removed:
        print(f"note: removed {len(removed)} temporary file(s) an interrupted run left in {out_dir}", file=sys.stderr)
    try:
        return _process_clips(args, clips, out_dir, mask_arg, vh)
    finally:  # every clip failed: no empty folder is left behind
        remove_if_created_empty(out_dir, existed)


def _check_outputs(args: argparse.Namespace, clips: list[Path], out_dir: Path, mask_arg: str | None) -> None:
    """The output folder is writable and no output replaces an input clip or mask (unless
    ``--overwrite``), as for photos."""
    from harmonykit.outputs import check_writable, refuse_overwrite
    from harmonykit.video.sources import find_clip_mask

    check_writable(out_dir, "--out")
    inputs: list[Path] = list(clips)
    if mask_arg == "auto":
        inputs += [m for c in clips if (m := find_clip_mask(c)) is not None]
    elif mask_arg is not None:
        inputs.append(Path(mask_arg))
    outputs = [_output_path(c, out_dir) for c in clips]
    if args.save_masks:
        outputs += [out_dir / f"{c.stem}.masks.npz" for c in clips]
    refuse_overwrite(outputs, inputs, allow=getattr(args, "overwrite", False),
                     hint="choose another --out (or pass --overwrite to replace the inputs)")


def _process_clips(args: argparse.Namespace, clips: list[Path], out_dir: Path, mask_arg: str | None,
                   vh: VideoHarmonizer) -> int:
    """The clips one by one: a bad clip is reported and the rest are done; the exit status."""
    from harmonykit.cli.common import clean_exit_on_sigterm
    from harmonykit.errors import HarmonykitError, batch_exit_code
    from harmonykit.video.sources import find_clip_mask

    h = vh.harmonizer
    failures: list[tuple[str, str]] = []
    internal = 0
    with clean_exit_on_sigterm(out_dir):
        for clip in clips:
            mask = mask_arg
            if mask_arg == "auto":
                mask = find_clip_mask(clip)
                if mask is None and h.mask_use == "required":
                    failures.append((str(clip), f"no mask next to it ({clip.stem}_mask.mp4/.png or "
                                                f"{clip.stem}_masks/) and {h.name} needs one"))
                    print(f"harmonykit harmonize: error: {clip}: {failures[-1][1]}", file=sys.stderr)
                    continue
            elif mask is not None and h.mask_use == "never":
                mask = None
            target = _output_path(clip, out_dir)
            masks_path = out_dir / f"{clip.stem}.masks.npz" if args.save_masks else None
            try:
                s = vh.harmonize_video(clip, target, mask=mask, save_masks=masks_path, crf=args.crf)
            except HarmonykitError as exc:
                failures.append((str(clip), str(exc)))
                print(f"harmonykit harmonize: error: {exc}", file=sys.stderr)
                continue
            except OSError as exc:  # the output could not be written (a folder in the way, disk full)
                failures.append((str(clip), f"cannot write its output in {out_dir}: {exc.strerror or exc}"))
                print(f"harmonykit harmonize: error: {clip}: {failures[-1][1]}", file=sys.stderr)
                continue
            except (MemoryError, RuntimeError) as exc:
                internal += 1
                failures.append((str(clip), f"{type(exc).__name__}: {exc}"))
                print(f"harmonykit harmonize: error: {clip}: {type(exc).__name__}: {exc}", file=sys.stderr)
                continue
            extra = f", scene cuts at frames {s.cuts}" if s.cuts else ""
            print(f"wrote {target} ({s.frames} frames, {s.size[1]}x{s.size[0]} at {s.fps:g} fps"
                  f"{', audio kept' if s.audio else ''}; {s.frames_per_second:.1f} frames/s{extra})", file=sys.stderr)
            if s.masks_file is not None:
                print(f"wrote {s.masks_file}", file=sys.stderr)
    if failures:
        print(f"harmonykit harmonize: {len(failures)} of {len(clips)} clip(s) failed: "
              + ", ".join(item for item, _ in failures), file=sys.stderr)
        return batch_exit_code(len(failures) - internal, internal)
    return 0


def run_edit_clip(args: argparse.Namespace) -> int:
    """``harmonykit edit CLIP --masks CLIP.masks.npz ... --out X.mp4``."""
    from harmonykit.errors import HarmonykitError
    from harmonykit.inference.editing import parse_assignments
    from harmonykit.video import edit_video
    from harmonykit.video.io import is_video_path, require_av

    require_av()
    out = Path(args.out)
    if not is_video_path(out) or out.suffix.lower() not in (".mp4", ".mkv", ".mov", ".m4v"):
        raise HarmonykitError(f"--out {out}: a clip needs a clip output (.mp4, .mkv or .mov)")
    if args.save_masks:
        print("note: --save-masks applies to photos; it is ignored for clips", file=sys.stderr)
    region = None
    if args.region:
        from harmonykit.io import read_mask

        region = read_mask(args.region)
    gains = parse_assignments(args.gain, "gain")
    offsets = parse_assignments(args.offset, "offset")
    if not gains and not offsets:
        print("note: no --gain/--offset given; rendering the saved masks unchanged", file=sys.stderr)
    edit_video(args.image, args.masks, out, gains, offsets, region)
    print(f"wrote {out}", file=sys.stderr)
    return 0
