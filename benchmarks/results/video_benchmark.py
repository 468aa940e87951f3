"""Video harmonization: independent frames vs temporal smoothing on a clip benchmark.

Usage::

    python -m benchmarks.results.video_benchmark                                  # ../shared/data/lalonde, val split
    python -m benchmarks.results.video_benchmark --source photos/ --clips 20 --frames 24 --json video.json
    python -m benchmarks.results.video_benchmark --quick                          # a tiny synthetic check (tests)

Builds ``--clips`` clips with :func:`harmonykit.video.benchmark.build_video_benchmark` (a
slow pan / zoom of each held-out photo, the object graded by one fixed colour transform),
then scores, per clip and averaged over clips (docs/evaluation.md, "Video"):

* ``composite``: the composites themselves;
* ``independent``: every frame harmonized on its own (``--smoothing 0``);
* ``smoothed``: the defaults of ``harmonykit harmonize CLIP``: the temporal smoothing
  (``--smoothing``, default 0.8, scene-cut reset) with the network on every second frame;
* ``every N`` (``--network-every N ...``): the smoothing with the network on every Nth
  frame (``every 1``: on every frame).

Columns: per-frame MSE, fMSE, PSNR and the temporal-consistency error (TCE: the
frame-to-frame change of the foreground's mean colour beyond the real clip's). The goals
of issue 29 are printed with a pass / fail: smoothed MSE within 5 % of independent, and
smoothed TCE at most 0.5 x independent.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_SOURCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "lalonde"


def _quick_source(folder: Path) -> Path:
    """Two synthetic photos with object masks (for --quick)."""
    from harmonykit.io import write_image, write_mask

    rng = np.random.default_rng(0)
    for k in range(2):
        yy, xx = np.mgrid[:96, :128]
        img = np.stack([(xx * 2 + 40 * k) % 256, (yy * 2) % 256, (xx + yy + 60 * k) % 256], axis=2).astype(np.uint8)
        img = np.clip(img.astype(int) + rng.integers(-10, 11, img.shape), 0, 255).astype(np.uint8)
        mask = np.zeros((96, 128), bool)
        mask[30:70, 40 + 10 * k:90 + 10 * k] = True
        write_image(folder / f"p{k}.jpg", img)
        write_mask(folder / f"p{k}_mask.png", mask)
    return folder


def run(source: Path, out: Path, model: str, clips: int, frames: int, size: int, smoothing: float, work_size: int,
        split: str | None, seed: int = 0, network_every: tuple[int, ...] = ()) -> dict:
    from harmonykit.video import VideoHarmonizer
    from harmonykit.video.benchmark import VideoBenchSettings, build_video_benchmark
    from harmonykit.video.metrics import evaluate_video_benchmark

    t0 = time.perf_counter()
    settings = VideoBenchSettings(frames=frames, size=(round(size * 3 / 4) // 2 * 2, size // 2 * 2), seed=seed)
    manifest = build_video_benchmark(source, out, settings, limit=clips, split=split, clips=False,
                                     show_progress=False)
    built = time.perf_counter() - t0
    vh = VideoHarmonizer.from_pretrained(model, smoothing=smoothing, work_size=work_size)
    rows = {"composite": evaluate_video_benchmark(out, None)}
    for name, a in (("independent", 0.0), ("smoothed", smoothing)):
        t = time.perf_counter()
        rows[name] = evaluate_video_benchmark(out, VideoHarmonizer(vh.harmonizer, smoothing=a))
        rows[name]["seconds"] = time.perf_counter() - t
    for n in network_every:  # the speed lever: the network on every Nth frame only
        t = time.perf_counter()
        rows[f"every {n}"] = evaluate_video_benchmark(out, VideoHarmonizer(vh.harmonizer, smoothing=smoothing,
                                                                            network_every=n))
        rows[f"every {n}"]["seconds"] = time.perf_counter() - t
    ind, smo = rows["independent"]["mean"], rows["smoothed"]["mean"]
    goals = {
        "mse_within_5pct": smo["mse"] <= 1.05 * ind["mse"],
        "tce_at_most_half": smo["tce"] <= 0.5 * ind["tce"],
        "mse_ratio": smo["mse"] / ind["mse"] if ind["mse"] else float("nan"),
        "tce_ratio": smo["tce"] / ind["tce"] if ind["tce"] else float("nan"),
    }
    return {"clips": len(manifest["clips"]), "frames_per_clip": frames, "size": list(settings.size),
            "model": vh.harmonizer.name, "smoothing": smoothing, "work_size": work_size, "build_s": built,
            "network_every": VideoHarmonizer(vh.harmonizer, smoothing=smoothing).network_every,
            "rows": rows, "goals": goals}


def report(res: dict) -> str:
    lines = [f"{res['clips']} clips x {res['frames_per_clip']} frames at {res['size'][1]}x{res['size'][0]}, "
             f"model {res['model']}, work size {res['work_size']}, smoothing {res['smoothing']} "
             f"(network every {res.get('network_every', 1)})",
             f"{'':<12} {'MSE':>9} {'fMSE':>9} {'PSNR':>7} {'TCE':>8}"]
    for name, row in res["rows"].items():
        m = row["mean"]
        lines.append(f"{name:<12} {m['mse']:9.2f} {m['fmse']:9.2f} {m['psnr']:7.2f} {m['tce']:8.3f}")
    g = res["goals"]
    lines.append(f"smoothed / independent: MSE x{g['mse_ratio']:.3f} (goal <= 1.05: "
                 f"{'pass' if g['mse_within_5pct'] else 'FAIL'}), TCE x{g['tce_ratio']:.3f} "
                 f"(goal <= 0.5: {'pass' if g['tce_at_most_half'] else 'FAIL'})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="onlineDb or folder of X.jpg + X_mask.png")
    p.add_argument("--split", default="val", help="lalonde split (default val)")
    p.add_argument("--model", default="default")
    p.add_argument("--clips", type=int, default=20)
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--size", type=int, default=256, help="clip width (height 3/4 of it)")
    p.add_argument("--smoothing", type=float, default=0.8)
    p.add_argument("--work-size", type=int, default=256)
    p.add_argument("--network-every", type=int, nargs="*", default=[],
                   help="also score smoothing with the network on every Nth frame only (one row per N)")
    p.add_argument("--out", type=Path, default=None, help="where to build the clips (default: a temporary folder)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--quick", action="store_true", help="2 synthetic photos, 6 frames of 64x48, the tiny "
                   "random model given with --model (a check of the plumbing, not a measurement)")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        source, clips, frames, size, ws = a.source, a.clips, a.frames, a.size, a.work_size
        if a.quick:
            source = _quick_source(tmp_path / "photos")
            clips, frames, size, ws = 2, 6, 64, 32
        res = run(source, a.out or tmp_path / "bench", a.model, clips, frames, size, a.smoothing, ws,
                  None if a.quick else a.split, network_every=tuple(a.network_every))
    print(report(res))
    if a.json:
        a.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
