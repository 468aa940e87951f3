"""Benchmark the bottleneck normalizations of ``srin_unet``: parameters, CPU latency, memory.

For each configuration (``in``, ``rain``, ``bain``, ``srin`` with the default key/value
pooling to 1024 tokens, and ``srin`` without pooling, optionally with the naive attention)
and each input size ``S``, a fresh Python process builds ``srin_unet(norm=...)`` and runs
one warm-up pass and ``--reps`` timed ones (batch 1, ``torch.inference_mode``, eval mode,
``--threads`` intra-op threads) of either

* ``--scope model``: the whole model on an ``S x S`` image, or
* ``--scope norm``: the bottleneck module alone on its input, ``(1, 256, S/8, S/8)``
  features with the ``S x S`` mask and region map (what the choice of norm costs),

and reports:

* ``params``: parameters of the whole model and of the bottleneck module;
* ``latency``: median and minimum wall time of the timed passes (``time.perf_counter``);
* ``peak RSS``: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` at the end of the process
  (peak resident memory of the whole process, Linux KiB -> MiB), and ``delta``: that peak
  minus the RSS peak just before the first forward pass (model, inputs and the imported
  libraries excluded) - the memory the forward pass itself needs.

Usage::

    python -m benchmarks.speed.srin_norms                       # both scopes, 256 and 1024
    python -m benchmarks.speed.srin_norms --scope norm --sizes 256 1024 --reps 5
    python -m benchmarks.speed.srin_norms --naive --json out.json   # also the naive HW x HW attention
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CONFIGS: dict[str, dict] = {
    "in": {"norm": "in"},
    "rain": {"norm": "rain"},
    "bain": {"norm": "bain"},
    "srin": {"norm": "srin"},
    "srin_nopool": {"norm": "srin", "norm_kwargs": {"max_kv_tokens": None}},
    "srin_naive": {"norm": "srin", "norm_kwargs": {"max_kv_tokens": None, "attention": "naive"}},
}


def _maxrss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _worker(config: str, size: int, reps: int, threads: int, scope: str) -> dict:
    import torch

    from harmonykit.models import create_model

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    model = create_model("srin_unet", **CONFIGS[config]).eval()
    image = torch.rand(1, 3, size, size, generator=g)
    mask = torch.zeros(1, 1, size, size)
    mask[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1  # foreground: 1/4 of the image
    cells = torch.rand(1, 3, 8, 8, generator=g)  # an 8 x 8 grid of palette-coloured regions
    regions = torch.nn.functional.interpolate(cells, size=(size, size), mode="nearest")
    norm = model.backbone.bottleneck.norm
    feats = torch.randn(1, norm.num_channels, size // 8, size // 8, generator=g)
    if scope == "model":
        def run():
            return model(image, mask, regions)
    else:
        def run():
            return norm(feats, mask, regions)
    base = _maxrss_mib()
    times = []
    with torch.inference_mode():
        for i in range(reps + 1):
            t = time.perf_counter()
            run()
            if i > 0:
                times.append(time.perf_counter() - t)
    peak = _maxrss_mib()
    times.sort()
    return {
        "config": config,
        "scope": scope,
        "size": size,
        "torch": torch.__version__,
        "params": sum(p.numel() for p in model.parameters()),
        "bottleneck_params": sum(p.numel() for p in model.backbone.bottleneck.norm.parameters()),
        "latency_ms": 1000 * times[len(times) // 2],
        "latency_min_ms": 1000 * times[0],
        "reps": reps,
        "threads": threads,
        "peak_rss_mib": peak,
        "delta_rss_mib": peak - base,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--configs", nargs="+", default=["in", "rain", "bain", "srin", "srin_nopool"], choices=sorted(CONFIGS))
    p.add_argument("--naive", action="store_true", help="add srin_naive (explicit HW x HW attention) at every size")
    p.add_argument("--reps", type=int, default=3, help="timed passes below 1024 px")
    p.add_argument("--reps-large", type=int, default=1, help="timed passes at >= 1024 px")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--scope", nargs="+", default=["norm", "model"], choices=["norm", "model"])
    p.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    p.add_argument("--worker", nargs=5, metavar=("CONFIG", "SIZE", "REPS", "THREADS", "SCOPE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        cfg, size, reps, threads, scope = args.worker
        print(json.dumps(_worker(cfg, int(size), int(reps), int(threads), scope)))
        return 0

    configs = list(args.configs) + (["srin_naive"] if args.naive and "srin_naive" not in args.configs else [])
    rows = []
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    for scope in args.scope:
        for size in args.sizes:
            reps = args.reps_large if size >= 1024 and scope == "model" else args.reps
            for cfg in configs:
                cmd = [sys.executable, __file__, "--worker", cfg, str(size), str(reps), str(args.threads), scope]
                res = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if res.returncode != 0:
                    print(f"{cfg} @ {size} ({scope}): failed\n{res.stderr[-2000:]}", file=sys.stderr)
                    continue
                row = json.loads(res.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(
                    f"{scope:5s} {cfg:12s} {size:5d}px  params {row['params']:>9,d} "
                    f"(norm {row['bottleneck_params']:>7,d})  latency {row['latency_ms']:9.1f} ms "
                    f"(min {row['latency_min_ms']:.1f})  peak RSS {row['peak_rss_mib']:7.0f} MiB  "
                    f"(forward +{row['delta_rss_mib']:.0f} MiB)",
                    flush=True,
                )
    print()
    print("| scope | norm | size | params (model) | params (norm) | latency ms (median / min) | peak RSS MiB | forward delta MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['scope']} | {r['config']} | {r['size']} | {r['params']:,} | {r['bottleneck_params']:,} | "
            f"{r['latency_ms']:.0f} / {r['latency_min_ms']:.0f} | {r['peak_rss_mib']:.0f} | {r['delta_rss_mib']:.0f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
