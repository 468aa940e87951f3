"""Parameter count and forward latency of the U-Net models at 256 x 256, batch 1.

Usage::

    python -m benchmarks.speed.model_latency                       # om_unet, om_unet_small, rgb_unet on CPU
    python -m benchmarks.speed.model_latency --models om_unet_tiny --size 64 --threads 2
    python -m benchmarks.speed.model_latency --device cuda --repeats 50

Latency: median wall time of ``repeats`` ``model(x)`` calls in eval mode under
``torch.inference_mode`` after ``warmup`` calls (CUDA: synchronised). Also reports
``harmonize`` on a 1024 x 768 image (network at 256, operator masks applied at full res).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from harmonykit.models import create_model
from harmonykit.models.unet import count_parameters


def _time(fn, repeats: int, warmup: int, device: torch.device) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["om_unet", "om_unet_small", "rgb_unet"])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--full-res", default="1024x768", help="WxH for the harmonize timing ('' to skip)"
    )
    ap.add_argument("--json", action="store_true", help="print one JSON line per model")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(
        f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"threads {torch.get_num_threads()}, device {device}"
    )
    for name in args.models:
        model = create_model(name).eval().to(device)
        params = count_parameters(model)
        x = torch.rand(args.batch, 3, args.size, args.size, device=device)
        with torch.inference_mode():
            t = _time(lambda m=model, x=x: m(x), args.repeats, args.warmup, device)
            row = {
                "model": name,
                "params": params,
                "size": args.size,
                "batch": args.batch,
                "forward_ms_median": 1000 * statistics.median(t),
                "forward_ms_min": 1000 * min(t),
            }
            if args.full_res:
                w, h = (int(v) for v in args.full_res.lower().split("x"))
                from harmonykit.limits import WorkSize
                from harmonykit.pipeline import harmonize_images
                from harmonykit.runners.model import ModelRunner

                big = torch.randint(0, 256, (h, w, 3), dtype=torch.uint8).numpy()
                tb = _time(
                    lambda m=model, b=big: harmonize_images(ModelRunner(m), [b], work_size=WorkSize.of(args.size),
                                                            device=device),
                    max(1, args.repeats // 2),
                    1,
                    device,
                )
                row[f"harmonize_{w}x{h}_ms_median"] = 1000 * statistics.median(tb)
        if args.json:
            print(json.dumps(row))
        else:
            extra = "".join(f", {k} {v:.1f}" for k, v in row.items() if k.startswith("harmonize"))
            print(
                f"{name:16s} params {params / 1e6:7.3f} M  forward {row['forward_ms_median']:8.1f} ms "
                f"(min {row['forward_ms_min']:.1f}){extra}"
            )
        del model
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
