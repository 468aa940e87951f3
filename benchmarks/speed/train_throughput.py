"""Training throughput (samples/s) of the generator step at 256 x 256, batch 8.

Usage::

    python -m benchmarks.speed.train_throughput                          # om_unet + om_unet_small, CPU
    python -m benchmarks.speed.train_throughput --threads 1 --steps 3
    python -m benchmarks.speed.train_throughput --device cuda --batch 8 64 --amp fp32 bf16
    python -m benchmarks.speed.train_throughput --lpips                  # + LPIPS-VGG term (random weights)
    python -m benchmarks.speed.train_throughput --data-dir ~/Pictures    # + on-the-fly pair making rate
    python -m benchmarks.speed.train_throughput --models om_unet_small --size 128 256 --gate --threads 1

What one step does (as :class:`harmonykit.training.Trainer`): generator forward (autocast for
``bf16``/``fp16``), Charbonnier (+ LPIPS with ``--lpips``: the VGG16 costs the same with
random weights, which are used so no weights file is needed), backward, Adam step, EMA
update. Batches are synthetic tensors, so data loading is excluded (``--data-dir`` measures
the on-the-fly pair maker separately, per process). Reported: median step time over
``--steps`` timed steps after ``--warmup`` steps (CUDA: synchronised), and
``batch / median`` samples/s.

Models: ``om_unet`` (the paper's generator, 39.5 M params, no mask) and the CPU recipe's
``om_unet_small`` with ``mask_use=optional`` (configs/small_photos.yaml). ``--gate`` also
times each model with the localisation gate (``gate="learned"``) and the ``localisation``
and ``outside`` loss terms (weight 1 each; half of the batch without a mask, as with
``mask_dropout: 0.5``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from harmonykit.models import create_model
from harmonykit.training.ema import EMA
from harmonykit.training.losses import GeneratorLoss, LossWeights

MODELS = {"om_unet": {}, "om_unet_small": {"mask_use": "optional"}}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_times(name: str, kwargs: dict, size: int, batch: int, steps: int, warmup: int, device: torch.device,
               amp: str, lpips: bool, gate: bool = False) -> list[float]:
    torch.manual_seed(0)
    if gate:
        kwargs = {**kwargs, "gate": "learned"}
    model = create_model(name, **kwargs).to(device).train()
    ema = EMA(model, 0.999)
    perceptual = None
    if lpips:
        from harmonykit.perceptual import LPIPS

        perceptual = LPIPS().to(device)  # random weights: same cost as the pretrained ones
    extra = {"localisation": 1.0, "outside": 1.0} if gate else {}
    loss_fn = GeneratorLoss(LossWeights(charbonnier=1.0, lpips=1.0 if lpips else 0.0, **extra), perceptual)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.9, 0.99))
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    scaler = torch.amp.GradScaler("cuda", enabled=amp == "fp16")
    g = torch.Generator(device="cpu").manual_seed(1)
    comp = torch.rand(batch, 3, size, size, generator=g).to(device)
    real = torch.rand(batch, 3, size, size, generator=g).to(device)
    mask = (torch.rand(batch, 1, size, size, generator=g) > 0.5).float().to(device)
    mask_in = mask if model.mask_use != "never" else None
    if mask_in is not None and gate:
        mask_in = mask_in * (torch.arange(batch, device=device) % 2 == 0).float().view(-1, 1, 1, 1)
    times = []
    for i in range(warmup + steps):
        _sync(device)
        t0 = time.perf_counter()
        ctx = torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
        with ctx:
            out = model(comp, mask_in)
        total, _ = loss_fn(out.image.float(), real, mask, localisation_logit=out.localisation_logit)
        opt.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.step(opt)
        scaler.update()
        ema.update(model)
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def pair_rate(folder: Path, size: int, n: int) -> float:
    """On-the-fly pairs per second in this process (sources cached first, as in training)."""
    from harmonykit.data.onthefly import OnTheFlyPairs
    from harmonykit.data.sources import open_source

    ds = OnTheFlyPairs(open_source(folder, format="generic"), size=size, regions="slic", cache=True,
                       labeler_kwargs={"n_segments": 12})
    ds.warm_cache(show_progress=False)
    t0 = time.perf_counter()
    for i in range(n):
        ds[(0, i % len(ds))]
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--size", type=int, nargs="+", default=[256])
    ap.add_argument("--gate", action="store_true",
                    help="also time each model with gate=learned + the localisation/outside terms")
    ap.add_argument("--batch", type=int, nargs="+", default=None,
                    help="batch sizes (default: 8, plus 64 on CUDA)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--amp", nargs="+", default=["fp32"], choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--lpips", action="store_true", help="include the LPIPS-VGG term")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--data-dir", type=Path, default=None, help="photo folder: also time on-the-fly pair making")
    ap.add_argument("--json", action="store_true", help="print one JSON line per measurement")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    batches = args.batch or ([8, 64] if device.type == "cuda" else [8])
    name_dev = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"# device {device} ({name_dev}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"size {' '.join(map(str, args.size))}, steps {args.steps} after {args.warmup} warm-up, lpips {args.lpips}")
    runs = [(n, s, b, a, g) for n in args.models for s in args.size for b in batches for a in args.amp
            for g in ((False, True) if args.gate else (False,)) if not (a == "fp16" and device.type != "cuda")]
    for name, size, batch, amp, gate in runs:
        times = step_times(name, MODELS[name], size, batch, args.steps, args.warmup, device, amp, args.lpips, gate)
        med = statistics.median(times)
        rec = {"model": name, "gate": gate, "batch": batch, "size": size, "amp": amp, "device": str(device),
               "lpips": args.lpips, "step_s": round(med, 4), "samples_per_s": round(batch / med, 2)}
        if device.type == "cuda":
            rec["max_mem_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
            torch.cuda.reset_peak_memory_stats(device)
        label = name + (" +gate" if gate else "")
        print(json.dumps(rec) if args.json else
              f"{label:<20} {size:>4} px batch {batch:>3} {amp:<5} step {med:8.3f} s  {batch / med:8.2f} samples/s"
              + (f"  peak {rec['max_mem_gib']} GiB" if "max_mem_gib" in rec else ""))
    if args.data_dir is not None:
        for size in args.size:
            rate = pair_rate(args.data_dir.expanduser(), size, 16)
            print(json.dumps({"onthefly_pairs_per_s": round(rate, 2), "size": size}) if args.json else
                  f"on-the-fly pairs (1 process, {size} px, slic regions cached): {rate:.2f} pairs/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
