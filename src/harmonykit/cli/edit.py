"""``harmonykit edit``: re-render a harmonization from edited operator masks (no network)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HELP = "edit saved operator masks (gain / offset per channel) and re-render, no network run"
DESCRIPTION = """\
Apply edited operator masks (from 'harmonykit harmonize --save-masks') to IMAGE, the
original composite, and write OUT. The network is not run again.

Edits, per channel (lab masks: l_mul l_add a_mul a_add b_mul b_add; hls masks: h_mul h_add
l_mul l_add s_mul s_add):

  --gain CH=G     scale the channel's change from identity by G (a factor):
                    add channels:  new = add * G + offset
                    mul channels:  new = 1 + (mul - 1) * G + offset
                  G = 1 keeps the model's edit, 0 removes it, 2 doubles it.
  --offset CH=V   add V after the gain, in natural units:
                    l_add: L units (L is 0..100);  a_add, b_add: CIELAB a/b units
                    (a: + red / - green, b: + yellow / - blue);
                    h_add: degrees of hue (HLS);  hls l_add, s_add: 0..1;
                    *_mul: factor units (offset 0.1 turns a factor 1.0 into 1.1).
  A channel the masks lack (e.g. l_mul on lab_add masks) starts at identity.
  Bounds (exit 2 beyond them): gains within -10..10; offsets within the channel's natural
  range (l_add 100, a_add/b_add 128, h_add 360, hls l_add/s_add 1, *_mul 10).
  A grayscale IMAGE gives a grayscale OUT.

OUT (and --save-masks) must not be one of the inputs (IMAGE, --masks, --region): that is
refused before any work (exit 2) unless --overwrite is given; their folders are checked
for writing first.

--region REGION.png limits the edits to a region: a mask image of any size (white = edit,
black = keep; grey blends), resized to the masks.

IMAGE may be a clip (.mp4, .mov, .mkv...) with the masks of 'harmonize CLIP --save-masks':
the same edit is applied to every frame and OUT is a clip (.mp4, .mkv or .mov).

examples:
  harmonykit edit clip.mp4 --masks results/clip.masks.npz --gain a_add=0 b_add=0 --out clip_no_colour.mp4
  harmonykit edit photo.jpg --masks results/photo.masks.npz --gain l_add=1.5 --out brighter.png
  harmonykit edit photo.jpg --masks results/photo.masks.npz --offset a_add=-5 b_add=3 --out cooler.png
  harmonykit edit photo.jpg --masks results/photo.masks.npz --gain a_add=0 b_add=0 \\
      --region person.png --out no_colour_change_on_person.png
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE", help="the original composite the masks were computed for")
    parser.add_argument("--masks", required=True, metavar="FILE.npz", help="operator masks (harmonize --save-masks)")
    parser.add_argument("--out", required=True, metavar="OUT.png", help="output image (.png keeps alpha; .jpg, .webp, .tif)")
    parser.add_argument("--gain", nargs="+", action="extend", default=[], metavar="CH=G",
                        help="gain per channel, a factor on the change from identity (e.g. l_add=1.5)")
    parser.add_argument("--offset", nargs="+", action="extend", default=[], metavar="CH=V",
                        help="offset per channel in natural units (e.g. a_add=-5: L 0..100, a/b CIELAB units, "
                             "h degrees, hls l/s 0..1, mul factor units)")
    parser.add_argument("--region", default=None, metavar="REGION.png",
                        help="limit the edits to this mask (any size; white = edit)")
    parser.add_argument("--save-masks", default=None, metavar="FILE.npz",
                        help="also write the edited masks (and FILE.png heatmaps)")
    parser.add_argument("--overwrite", action="store_true", help="let OUT replace an input file (refused by default)")


def run(args: argparse.Namespace) -> int:
    from harmonykit.errors import HarmonykitError, ImageReadError

    # missing files fail here, before PyTorch (seconds to import) is loaded; same messages as the readers
    if not Path(args.masks).exists():
        raise HarmonykitError(f"{args.masks}: operator-mask file does not exist")
    for given in (args.image, args.region):
        if given and not Path(given).exists():
            raise ImageReadError(given, "file does not exist")
    _check_outputs(args)
    from harmonykit.video.io import is_video_path

    if is_video_path(args.image):  # one edit for the whole clip
        from harmonykit.cli.harmonize_video import run_edit_clip

        return run_edit_clip(args)
    from harmonykit.inference.editing import check_edits, parse_assignments
    from harmonykit.io import read_image_with_mode, read_mask
    from harmonykit.operators import OperatorMasks

    gains = parse_assignments(args.gain, "gain")
    offsets = parse_assignments(args.offset, "offset")
    masks = OperatorMasks.load(args.masks)
    meta = OperatorMasks.load_metadata(args.masks)
    check_edits(gains, offsets, masks.space)
    if masks.batch_size != 1:
        raise HarmonykitError(f"{args.masks}: holds {masks.batch_size} masks; expected one image's masks")
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"):
        raise HarmonykitError(f"--out {out}: unsupported extension {out.suffix!r} (use .png, .jpg, .webp or .tif)")
    rgb, alpha, gray = read_image_with_mode(args.image)
    size = meta.get("image_size")
    if isinstance(size, list) and len(size) == 2 and tuple(size) != rgb.shape[:2]:
        print(f"warning: {args.image} is {rgb.shape[1]}x{rgb.shape[0]} but the masks were computed for a "
              f"{size[1]}x{size[0]} image (WxH); applying them anyway", file=sys.stderr)
    region = read_mask(args.region) if args.region else None
    if not gains and not offsets:
        print("note: no --gain/--offset given; rendering the model's masks unchanged", file=sys.stderr)
    edited = masks.edit_many(gains, offsets, region)
    result = edited.apply_uint8(rgb)
    if gray:  # a grayscale image stays grayscale (its luma, as Pillow's convert("L"))
        from PIL import Image

        result = np.asarray(Image.fromarray(result, mode="RGB").convert("L"))
    from harmonykit.outputs import ItemWrites

    item = ItemWrites()  # OUT and the edited masks: written whole or not at all
    try:
        _write(item, out, result, alpha, edited, gains, offsets, meta, rgb, args)
        item.commit()
    except Exception:
        item.discard()
        raise
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _check_outputs(args: argparse.Namespace) -> None:
    """Before any work: the output folders are writable, no output replaces an input."""
    from harmonykit.outputs import check_writable, refuse_overwrite

    outputs = [Path(args.out)]
    if args.save_masks:
        outputs += [Path(args.save_masks), Path(args.save_masks).with_suffix(".png")]
    for label, p in (("--out", outputs[0]), ("--save-masks", outputs[-1])):
        check_writable(p.parent, label)
    inputs = [Path(p) for p in (args.image, args.masks, args.region) if p]
    refuse_overwrite(outputs, inputs, allow=args.overwrite, hint="choose another --out (or pass --overwrite)")


def _write(item, out, result, alpha, edited, gains, offsets, meta, rgb, args) -> None:
    from harmonykit.io import write_image

    item.write(out, lambda p: write_image(p, result, alpha))
    if args.save_masks:
        from harmonykit.inference.editing import ChannelEdit
        from harmonykit.mask_metadata import mask_metadata

        edits = {ch: ChannelEdit(gains.get(ch, 1.0), offsets.get(ch, 0.0)) for ch in sorted({*gains, *offsets})}
        npz = Path(args.save_masks)
        item.write(npz, lambda p: edited.save(p, metadata=mask_metadata(base=meta, edits=edits, region=args.region)))
        s = 256 / max(rgb.shape[:2])
        hm = edited.heatmaps(size=(max(1, round(rgb.shape[0] * s)), max(1, round(rgb.shape[1] * s))))
        item.write(npz.with_suffix(".png"), lambda p: write_image(p, hm.grid))
