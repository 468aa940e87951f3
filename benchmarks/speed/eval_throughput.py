"""Evaluation throughput: images/s of ``harmonykit evaluate`` at 256 x 256.

Measures the whole evaluation loop (decode + resize + method + all metrics + report) for the
``identity`` baseline and for the paper-size operator-mask model (``om_unet``: depth 8,
ngf 64, about 40 M parameters; random initialisation: speed does not depend on the weights),
plus the model's forward pass alone.

Without ``--bench`` a small harmonykit-layout benchmark is built in a temporary folder with
``harmonykit.data.builder.build_benchmark`` (SLIC regions) from crops of scikit-image's
sample photos, or from ``--photos DIR``.

    python -m benchmarks.speed.eval_throughput                      # 16 images, CPU
    python -m benchmarks.speed.eval_throughput --bench hscene_test --n 64 --device cuda --batch-size 16
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def make_photos(folder: Path, n: int) -> Path:
    """``n`` 320 x 320 JPEG crops of scikit-image sample photos (deterministic)."""
    from skimage import data

    from harmonykit.io import write_image

    bases = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    rng = np.random.default_rng(0)
    for k in range(n):
        img = bases[k % len(bases)]
        h, w = img.shape[:2]
        side = min(h, w, 320)
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        write_image(folder / f"photo{k:03d}.jpg", np.ascontiguousarray(img[y:y + side, x:x + side]))
    return folder


def build(photos: Path, out: Path, n: int) -> Path:
    from harmonykit.data.builder import BuildSettings, build_benchmark

    report = build_benchmark(BuildSettings(source=str(photos), regions="slic", size=256), out, limit=n,
                             show_progress=False)
    print(f"built {report.finished} pairs in {out}", file=sys.stderr)
    return out


def forward_only(model: torch.nn.Module, size: int, batch: int, device: str, repeats: int = 3) -> float:
    """Images/s of the model's forward alone on random input at the work size (after one warm-up call)."""
    x = torch.rand(batch, 3, size, size, device=device)
    with torch.no_grad():
        model(x)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        with torch.no_grad():
            model(x)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return repeats * batch / (time.perf_counter() - t0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", type=Path, default=None, help="existing benchmark folder (any layout)")
    p.add_argument("--photos", type=Path, default=None, help="photo folder to build the benchmark from")
    p.add_argument("--n", type=int, default=16, help="pairs to score (default 16)")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--methods", nargs="+", default=["identity", "om_unet"],
                   help="baselines and/or registered model names (random init)")
    args = p.parse_args()
    os.environ.setdefault("HARMONYKIT_NO_PROGRESS", "1")
    if args.threads:
        torch.set_num_threads(args.threads)

    from harmonykit.baselines import is_baseline
    from harmonykit.evaluation.evaluator import EvalOptions, evaluate
    from harmonykit.models import create_model

    with tempfile.TemporaryDirectory() as tmp:
        bench = args.bench
        if bench is None:
            photos = args.photos or make_photos(Path(tmp) / "photos", args.n)
            bench = build(photos, Path(tmp) / "bench", args.n)
        rows = []
        for name in args.methods:
            method = name if is_baseline(name) else create_model(name).eval()
            opts = EvalOptions(size=args.size, batch_size=args.batch_size, device=args.device,
                               workers=args.workers, limit=args.n, lpips=False, show_progress=False)
            result = evaluate(bench, method, Path(tmp) / f"report-{name}", opts)
            n = len(result.results)
            fwd = "-"
            if not is_baseline(name):
                fwd = f"{forward_only(method, args.size, args.batch_size, args.device):.2f}"
            rows.append((name, n, result.seconds, n / result.seconds, fwd,
                         result.summary["overall"]["model"]["mse"]))
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, size {args.size}, "
          f"batch {args.batch_size}, workers {args.workers}, LPIPS off")
    print("| method | images | seconds | images/s (evaluate, end to end) | images/s (forward only) | MSE |")
    print("|---|---|---|---|---|---|")
    for name, n, sec, ips, fwd, mse in rows:
        print(f"| {name} | {n} | {sec:.2f} | {ips:.2f} | {fwd} | {mse:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
