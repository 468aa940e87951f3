"""Pins of today's outputs (issue 28, part B): ``harmonize`` (CLI, on the packaged examples,
with and without ``--mask auto``; the tiny operator / RGB / SRIN models and a baseline),
``edit``, and the evaluator's figures on a fixed tiny pair set.

The digests (SHA-256 of the decoded pixels / arrays) and figures are in
``onepath_pins.json`` beside this file; ``HARMONYKIT_REPIN=1`` rewrites it (only after a
change that is meant to change the numbers, said in the commit message). The network runs on
one thread so that the figures do not depend on the machine's thread count.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from harmonykit.cli.main import main

PINS = Path(__file__).with_name("onepath_pins.json")
EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "harmonykit" / "examples"
_REPIN = os.environ.get("HARMONYKIT_REPIN") == "1"
_NEW: dict[str, object] = {}


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _digest(arrays: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:24]


def _file_digest(path: Path) -> str:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return _digest([z[k] for k in ("values", "channels", "space")])
    from PIL import Image

    with Image.open(path) as im:
        return _digest([np.asarray(im), np.array(list(im.mode.encode()), np.uint8)])


def _folder_digests(folder: Path) -> dict[str, str]:
    return {p.name: _file_digest(p) for p in sorted(folder.iterdir()) if p.is_file()}


def _check(key: str, value: object) -> None:
    if _REPIN:
        pins = json.loads(PINS.read_text()) if PINS.is_file() else {}
        pins[key] = value
        PINS.write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n")
        return
    pins = json.loads(PINS.read_text())
    assert value == pins[key], f"{key}: output changed"


@pytest.fixture(scope="module")
def examples(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("examples")
    for p in EXAMPLES.iterdir():
        shutil.copy(p, d / p.name)
    return d


def _harmonize(examples: Path, out: Path, *extra: str) -> dict[str, str]:
    inputs = [str(examples / f"{s}.jpg") for s in ("cat", "coffee", "rocket")]
    rc = main(["harmonize", *inputs, "--out", str(out), *extra])
    assert rc == 0
    return _folder_digests(out)


@pytest.mark.parametrize("mask", ["none", "auto"])
def test_pin_harmonize_default_model(examples, tmp_path, mask) -> None:
    extra = ["--mask", "auto"] if mask == "auto" else []
    _check(f"harmonize/default/{mask}",
           _harmonize(examples, tmp_path / "o", "--work-size", "64", "--save-masks", "--compare", *extra))


@pytest.mark.parametrize("model", ["om", "rgb", "srin", "reinhard"])
def test_pin_harmonize_tiny_models(examples, tmp_path, model, request) -> None:
    spec = model if model == "reinhard" else str(request.getfixturevalue(f"{model}_tiny_dir"))
    _check(f"harmonize/{model}/auto",
           _harmonize(examples, tmp_path / "o", "--work-size", "32", "--mask", "auto", "--model", spec))


def test_pin_harmonize_full_size_work(tmp_path, om_tiny_dir, coffee) -> None:
    """``work_size=None`` (the network at the image's size) through the API."""
    from harmonykit.inference import Harmonizer

    h = Harmonizer.from_pretrained(str(om_tiny_dir), work_size=None)
    mask = np.zeros(coffee.shape[:2], np.uint8)
    mask[100:300, 200:400] = 255
    small = np.ascontiguousarray(coffee[::4, ::4])
    _check("api/om/full_work", _digest([h(small).rgb, h(small, mask[::4, ::4]).rgb]))


def test_pin_edit(examples, tmp_path) -> None:
    out = tmp_path / "o"
    assert main(["harmonize", str(examples / "cat.jpg"), "--out", str(out), "--work-size", "64",
                 "--save-masks", "--mask", "auto"]) == 0
    target = tmp_path / "edited.png"
    assert main(["edit", str(examples / "cat.jpg"), "--masks", str(out / "cat.masks.npz"),
                 "--gain", "l_add=1.5", "--offset", "a_add=2", "--out", str(target)]) == 0
    _check("edit/cat", _file_digest(target))


@pytest.fixture(scope="module")
def pair_bench(tmp_path_factory, coffee, write_pair_benchmark) -> Path:
    """4 pairs, 40x48, lossless PNG."""
    reals = [np.ascontiguousarray(coffee[30 * k: 30 * k + 160: 4, 60 + 20 * k: 60 + 20 * k + 192: 4]) for k in range(4)]
    masks = [np.zeros((40, 48), np.uint8) for _ in range(4)]
    for k, mask in enumerate(masks):
        mask[6 + 3 * k: 26 + 3 * k, 8 + 2 * k: 36] = 255
    return write_pair_benchmark(tmp_path_factory.mktemp("pins") / "bench", reals, masks, 0.7, 30)


def _figures(report: Path) -> dict[str, object]:
    m = json.loads((report / "metrics.json").read_text())
    model = {k: (None if v is None else round(float(v), 9)) for k, v in sorted(m["overall"]["model"].items())
             if isinstance(v, (int, float)) or v is None}
    per_image = (report / "per_image.csv").read_text().splitlines()
    return {"overall": model, "per_image": hashlib.sha256("\n".join(per_image).encode()).hexdigest()[:24]}


@pytest.mark.parametrize("model,size", [("om", 0), ("om", 40), ("rgb", 0), ("srin", 0), ("reinhard", 0)])
def test_pin_evaluate(pair_bench, tmp_path, model, size, request) -> None:
    from harmonykit.evaluation.evaluator import EvalOptions, evaluate

    spec = model if model == "reinhard" else str(request.getfixturevalue(f"{model}_tiny_dir"))
    opts = EvalOptions(size=size, work_size=16, lpips=False, show_progress=False, batch_size=3)
    result = evaluate(pair_bench, spec, tmp_path / "r", opts)
    assert result.exit_code == 0
    _check(f"evaluate/{model}/size{size}", _figures(tmp_path / "r"))


@pytest.mark.parametrize("model", ["om", "rgb", "srin", "reinhard"])
def test_evaluate_scores_what_harmonize_writes(pair_bench, tmp_path, model, request) -> None:
    """The evaluator's outputs are ``harmonykit harmonize``'s pixels, exactly (issue 28):
    both run :func:`harmonykit.pipeline.harmonize_images`; the same pairs, one call per pair
    and a batch of every pair."""
    from harmonykit.evaluation.evaluator import EvalOptions, decide_mask, resolve_method
    from harmonykit.evaluation.pairs import Prepared
    from harmonykit.evaluation.scoring import run_group
    from harmonykit.io import read_image, read_mask
    from harmonykit.regionmaps import region_provider_from_settings

    spec = model if model == "reinhard" else str(request.getfixturevalue(f"{model}_tiny_dir"))
    method = resolve_method(spec, "cpu")
    runner = method.runner
    decision = decide_mask(False, runner.mask_use, kind=runner.kind)
    provider = region_provider_from_settings(runner.region_settings or {}) if runner.uses_regions else None
    opts = EvalOptions(size=0, work_size=32, lpips=False)
    pairs = [Prepared(f"p{k}", "", read_image(pair_bench / "composite" / f"p{k}.png"),
                      read_image(pair_bench / "real" / f"p{k}.png"), read_mask(pair_bench / "mask" / f"p{k}.png"))
             for k in range(4)]
    batch = run_group(method, pairs, decision, opts, provider)
    out = tmp_path / "o"
    assert main(["harmonize", *(str(pair_bench / "composite" / f"p{k}.png") for k in range(4)), "--out", str(out),
                 "--mask", str(pair_bench / "mask"), "--model", spec, "--work-size", "32"]) == 0
    for k, pair in enumerate(pairs):
        written = read_image(out / f"p{k}.png")
        (one,) = run_group(method, [pair], decision, opts, provider)
        assert np.array_equal(one.output, written), f"p{k}: evaluate (one pair) != harmonize"
        diff = np.abs(batch[k].output.astype(int) - written.astype(int))
        if model == "srin":  # a batched network call: float rounding of the batched convolutions / region norms
            assert diff.max() <= 1 and (diff > 0).mean() < 0.01, (diff.max(), (diff > 0).mean())
        else:
            assert not diff.any(), f"p{k}: evaluate (batch) != harmonize"
