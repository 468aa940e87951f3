"""Evaluator end to end on tiny benchmarks written in the three layouts from the same arrays."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from harmonykit.data.datasets import open_benchmark
from harmonykit.evaluation import metrics as M
from harmonykit.evaluation.evaluator import (
    EvalOptions,
    decide_mask,
    evaluate,
    prepare_pair,
    resize_image,
    resize_mask,
)
from harmonykit.evaluation.report import compare_reports, load_report
from harmonykit.io import write_image, write_mask
from harmonykit.models import create_model

SIZE = 32


def _pairs(astronaut: np.ndarray, n: int = 4) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """``(id, composite, real, mask uint8)``: 32x32 crops, one or two perturbed boxes each;
    the last pair has an empty mask (composite == real)."""
    rng = np.random.default_rng(3)
    out = []
    for k in range(n):
        real = astronaut[40 * k: 40 * k + 256: 8, 60 + 16 * k: 60 + 16 * k + 256: 8].copy()
        comp = real.copy()
        mask = np.zeros((SIZE, SIZE), np.uint8)
        if k < n - 1:
            for _ in range(1 + k % 2):
                y, x = rng.integers(0, 20, 2)
                h, w = rng.integers(6, 12, 2)
                mask[y:y + h, x:x + w] = 255
            gain = np.array([1.3, 0.9, 0.7]) if k % 2 else np.array([0.7, 1.0, 1.2])
            fg = mask > 0
            comp[fg] = np.clip(comp[fg] * gain + 10, 0, 255).astype(np.uint8)
        out.append((f"img{k}", comp, real, mask))
    return out


def write_layouts(root: Path, pairs) -> dict[str, Path]:
    """The same pairs as harmonykit, triptych and iHarmony4 folders (lossless PNG)."""
    hk, tri, ih = root / "hk" / "bench", root / "tri" / "bench", root / "ih" / "HCOCO"
    lines = []
    for i, (pid, comp, real, mask) in enumerate(pairs):
        write_image(hk / "composite" / f"{pid}.png", comp)
        write_image(hk / "real" / f"{pid}.png", real)
        write_mask(hk / "mask" / f"{pid}.png", mask)
        write_image(tri / f"{pid}.png", np.concatenate([real, comp, np.repeat(mask[..., None], 3, 2)], axis=1))
        real_name, obj = f"c{i}", f"c{i}_{100 + i}"
        write_image(ih / "composite_images" / f"{obj}_1.png", comp)
        write_image(ih / "real_images" / f"{real_name}.png", real)
        write_mask(ih / "masks" / f"{obj}.png", mask)
        lines.append(f"{obj}_1.png")
    (ih / "HCOCO_test.txt").write_text("\n".join(lines) + "\n")
    (ih / "HCOCO_train.txt").write_text("")
    return {"harmonykit": hk, "triptych": tri, "iharmony4": root / "ih"}


@pytest.fixture(scope="module")
def layouts(tmp_path_factory, astronaut) -> dict[str, Path]:
    return write_layouts(tmp_path_factory.mktemp("bench"), _pairs(astronaut))


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = create_model("om_unet_tiny")
    with torch.no_grad():  # a visible, non-identity operator-mask output
        for p in model.head.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.save_pretrained(tmp_path_factory.mktemp("model") / "tiny" / "weights")


def _opts(**kw) -> EvalOptions:
    base = dict(size=SIZE, batch_size=2, show_progress=False, lpips=False, figure_rows=2)
    base.update(kw)
    return EvalOptions(**base)


def _per_image(result) -> np.ndarray:
    return np.array([[r.model[k] for k in ("mse", "fmse", "psnr", "ssim", "fssim")] for r in result.results],
                    dtype=float)


def test_layouts_are_detected(layouts) -> None:
    for layout, path in layouts.items():
        ds = open_benchmark(path)
        assert ds.layout == layout and len(ds) == 4


@pytest.mark.parametrize("method", ["identity", "reinhard", "model"])
def test_three_layouts_give_the_same_numbers(layouts, tiny_model_dir, method) -> None:
    spec = tiny_model_dir if method == "model" else method
    res = {k: evaluate(p, spec, None, _opts()) for k, p in layouts.items()}
    ref = _per_image(res["harmonykit"])
    assert ref.shape == (4, 5)
    for k in ("triptych", "iharmony4"):
        np.testing.assert_array_equal(np.isnan(_per_image(res[k])), np.isnan(ref))
        np.testing.assert_allclose(_per_image(res[k]), ref, rtol=1e-12, atol=1e-12, err_msg=k)
        assert res[k].summary["overall"]["model"]["mse"] == pytest.approx(res["harmonykit"].summary["overall"]["model"]["mse"])
    if method == "identity":
        assert not np.isnan(ref[:3]).any() and np.isnan(ref[3, 1])  # empty mask -> fMSE undefined
    if method == "model":  # a real model changes the image
        assert not np.allclose(ref[:, 0], _per_image(evaluate(layouts["harmonykit"], "identity", None, _opts()))[:, 0])


def test_identity_scores_equal_direct_metric_calls(layouts, astronaut) -> None:
    result = evaluate(layouts["harmonykit"], "identity", None, _opts())
    pairs = {pid: (comp, real, mask) for pid, comp, real, mask in _pairs(astronaut)}
    for r in result.results:
        comp, real, mask = pairs[r.id]
        m = mask.astype(np.float32) / 255
        assert r.model["mse"] == pytest.approx(M.mse(comp, real))
        assert r.model["ssim"] == pytest.approx(M.ssim(comp, real))
        assert r.fg_ratio == pytest.approx(M.foreground_ratio(m))
        assert r.model["mse"] == r.composite["mse"]  # identity output == composite
        assert r.model["om_iou"] is None
    overall = result.summary["overall"]
    assert overall["model"]["mse"] == pytest.approx(np.mean([M.mse(c, r) for c, r, _ in pairs.values()]))
    finite = [M.fmse(c, r, m.astype(np.float32) / 255) for c, r, m in pairs.values()]
    assert overall["model"]["fmse"] == pytest.approx(np.nanmean(finite))
    assert overall["undefined"]["model.fmse"] == 1
    assert overall["model"]["lpips"] is None
    assert result.exit_code == 0


def test_resizing_rule(astronaut) -> None:
    img = astronaut[:100, :60]
    small = resize_image(img, 20)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
    ref = torch.nn.functional.interpolate(x, size=(20, 20), mode="bilinear", antialias=True, align_corners=False)
    np.testing.assert_array_equal(small, (ref[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy())
    mask = np.zeros((100, 60), np.float32)
    mask[:50, :30] = 1.0
    m = resize_mask(mask, 20)
    assert set(np.unique(m).tolist()) == {0.0, 1.0} and m[:10, :10].all() and not m[10:].any()

    class S:
        id, subset, composite, real = "x", "s", img, img.copy()
        mask = np.zeros((99, 60), np.float32)

    with pytest.raises(ValueError, match="sizes differ"):
        prepare_pair(S, 20)


def test_mask_settings() -> None:
    assert decide_mask(True, "never").give is False
    opt = decide_mask(True, "optional")
    assert not opt.give and "--with-mask" in opt.text
    assert decide_mask(True, "optional", with_mask=True).oracle
    req = decide_mask(True, "required", kind="baseline")
    assert req.give and req.oracle and "oracle mask" in req.text and "baseline" in req.text
    single = decide_mask(False, "required")
    assert single.give and not single.oracle
    assert decide_mask(False, "optional").give
    assert not decide_mask(False, "never").give


def test_baseline_on_multi_mask_gets_oracle_mask(layouts) -> None:
    multi = evaluate(layouts["harmonykit"], "histogram", None, _opts())
    assert multi.summary["settings"]["oracle_mask"] and multi.summary["settings"]["mask_short"] == "oracle mask"
    assert any("oracle mask" in n for n in multi.summary["notes"])
    single = evaluate(layouts["iharmony4"], "histogram", None, _opts())
    assert single.summary["settings"]["mask_given"] and not single.summary["settings"]["oracle_mask"]
    # the baseline used the mask: it changed the foregrounds
    assert multi.summary["overall"]["model"]["fmse"] != multi.summary["overall"]["composite"]["fmse"]


def test_optional_mask_model_with_and_without_mask(layouts) -> None:
    torch.manual_seed(1)
    model = create_model("om_unet_tiny", mask_use="optional")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    free = evaluate(layouts["harmonykit"], model, None, _opts())
    given = evaluate(layouts["harmonykit"], model, None, _opts(with_mask=True))
    assert not free.summary["settings"]["mask_given"] and given.summary["settings"]["mask_given"]
    assert given.summary["settings"]["oracle_mask"]
    assert not np.allclose(_per_image(free)[:, 0], _per_image(given)[:, 0])
    # iHarmony4: the mask is given by default
    assert evaluate(layouts["iharmony4"], model, None, _opts()).summary["settings"]["mask_given"]


def test_om_iou_reported_for_operator_mask_models(layouts, tiny_model_dir) -> None:
    result = evaluate(layouts["harmonykit"], tiny_model_dir, None, _opts())
    ious = [r.model["om_iou"] for r in result.results]
    assert all(v is not None for v in ious)
    assert all(math.isnan(v) or 0.0 <= v <= 1.0 for v in ious)
    assert result.summary["settings"]["model"]["label"] == "tiny"  # run dir name, not "weights"
    # a huge threshold marks nothing as changed -> IoU 0 where there is a foreground
    strict = evaluate(layouts["harmonykit"], tiny_model_dir, None, _opts(om_threshold=1e6))
    assert [r.model["om_iou"] for r in strict.results][:3] == [0.0, 0.0, 0.0]


def test_original_resolution_with_mixed_sizes(tmp_path, astronaut, tiny_model_dir) -> None:
    pairs = _pairs(astronaut, 2)
    pid, comp, real, mask = pairs[0]
    big = (pid + "big", np.kron(comp, np.ones((2, 1, 1), np.uint8))[:, :48], np.kron(real, np.ones((2, 1, 1), np.uint8))[:, :48],
           np.kron(mask, np.ones((2, 1), np.uint8))[:, :48])
    paths = write_layouts(tmp_path, [big, pairs[1]])
    result = evaluate(paths["harmonykit"], tiny_model_dir, None, _opts(size=0, work_size=32))
    assert result.exit_code == 0 and len(result.results) == 2
    assert result.summary["settings"]["size"] == 0 and result.summary["settings"]["work_size"] == 32
    ident = evaluate(paths["harmonykit"], "identity", None, _opts(size=0))
    assert ident.results[0].model["mse"] == pytest.approx(M.mse(big[1], big[2]))


def test_corrupt_and_missing_files_are_counted_not_fatal(tmp_path, astronaut) -> None:
    paths = write_layouts(tmp_path, _pairs(astronaut))
    hk = paths["harmonykit"]
    (hk / "composite" / "img1.png").write_bytes(b"not a png at all")
    (hk / "real" / "img2.png").unlink()
    out = tmp_path / "report"
    result = evaluate(hk, "identity", out, _opts())
    assert result.exit_code == 2  # unreadable / missing files: user mistakes
    assert len(result.results) == 2 and len(result.failures) == 2
    fails = {f.id: f for f in result.failures}
    assert set(fails) == {"img1", "img2"}
    assert "img1.png" in fails["img1"].reason and fails["img1"].stage == "read"
    assert "does not exist" in fails["img2"].reason
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["counts"] == {"total": 4, "scored": 2, "failed": 2,
                                 "per_subset": {"bench": {"scored": 2, "failed": 2}}}
    assert {f["id"] for f in summary["failures"]} == {"img1", "img2"}
    assert "Failures (2)" in (out / "table.md").read_text()
    # nothing readable at all: still a report, still exit 2
    for p in (hk / "composite").iterdir():
        p.write_bytes(b"junk")
    none = evaluate(hk, "identity", tmp_path / "none", _opts())
    assert none.exit_code == 2 and not none.results and (tmp_path / "none" / "metrics.json").is_file()


def test_report_files_and_structure(tmp_path, layouts, tiny_model_dir) -> None:
    out = tmp_path / "r"
    result = evaluate(layouts["harmonykit"], tiny_model_dir, out, _opts(workers=1))
    assert set(result.paths) == {"metrics.json", "per_image.csv", "table.md", "best_worst.png"}
    s = json.loads((out / "metrics.json").read_text())
    assert set(s) >= {"harmonykit_version", "settings", "definitions", "counts", "overall", "per_subset",
                      "per_bucket", "failures", "notes", "timing"}
    assert set(s["per_bucket"]) == {"0-5%", "5-15%", "15-100%"}
    assert sum(b["n"] for b in s["per_bucket"].values()) == 4
    assert s["settings"]["mask_short"] == "mask-free" and s["settings"]["size"] == SIZE
    assert s["settings"]["resize"]["image"].startswith("bilinear")
    assert set(s["definitions"]) >= {"mse", "fmse", "psnr", "ssim", "lpips", "om_iou"}
    assert s["overall"]["model"]["lpips"] is None and any("LPIPS unavailable" in n for n in s["notes"])
    rows = list(csv.DictReader(io.StringIO((out / "per_image.csv").read_text())))
    assert [r["id"] for r in rows] == ["img0", "img1", "img2", "img3"]
    assert rows[3]["fmse"] == "nan" and rows[0]["lpips"] == ""
    assert float(rows[0]["mse"]) == pytest.approx(result.results[0].model["mse"], rel=1e-5)
    table = (out / "table.md").read_text()
    assert "| Method | MSE↓ | PSNR↑ | SSIM↑ | LPIPS↓ |" in table
    assert "| Composite |" in table and "| tiny |" in table and "OM IoU" in table
    png = (out / "best_worst.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert load_report(out)["overall"]["n"] == 4


def test_iharmony4_tables_with_two_subsets(tmp_path, layouts) -> None:
    import shutil

    root = tmp_path / "iharmony4"
    shutil.copytree(layouts["iharmony4"] / "HCOCO", root / "HCOCO")
    shutil.copytree(layouts["iharmony4"] / "HCOCO", root / "HAdobe5k")
    (root / "HAdobe5k" / "HCOCO_test.txt").rename(root / "HAdobe5k" / "HAdobe5k_test.txt")
    (root / "HAdobe5k" / "HCOCO_train.txt").rename(root / "HAdobe5k" / "HAdobe5k_train.txt")
    result = evaluate(root, "reinhard", tmp_path / "r", _opts())
    s = result.summary
    assert s["counts"]["scored"] == 8 and list(s["per_subset"]) == ["HAdobe5k", "HCOCO"]
    assert s["per_subset"]["HCOCO"]["model"]["mse"] == pytest.approx(s["per_subset"]["HAdobe5k"]["model"]["mse"])
    assert s["overall"]["model"]["mse"] == pytest.approx(s["per_subset"]["HCOCO"]["model"]["mse"])
    table = (tmp_path / "r" / "table.md").read_text()
    assert "SRIN Table 1" in table and "SRIN Table 2" in table
    assert "| Method | HAdobe5k MSE↓ | HAdobe5k PSNR↑ | HCOCO MSE↓ | HCOCO PSNR↑ | Average MSE↓ | Average PSNR↑ |" in table
    assert "| Method | 0-5% MSE↓ | 0-5% fMSE↓ | 5-15% MSE↓ | 5-15% fMSE↓ | 15-100% MSE↓ | 15-100% fMSE↓ | Average MSE↓ | Average fMSE↓ |" in table
    only = evaluate(root, "reinhard", None, _opts(subsets=["hcoco"]))
    assert list(only.summary["per_subset"]) == ["HCOCO"]
    cmp = compare_reports([load_report(tmp_path / "r")])
    assert "HAdobe5k MSE↓" in cmp and "Average fMSE↓" in cmp and "mask, 32" in cmp


def test_lpips_when_available(layouts) -> None:
    from harmonykit.perceptual import LPIPS

    torch.manual_seed(0)
    lp = LPIPS()  # random weights stand in for the pretrained files
    for lin in lp.lins:  # LPIPS channel weights are non-negative
        lin.weight.data.abs_()
    result = evaluate(layouts["harmonykit"], "identity", None, _opts(lpips=lp))
    vals = [r.model["lpips"] for r in result.results]
    assert all(v is not None and v > 0 for v in vals[:3])
    assert vals[3] == 0.0  # composite == real
    assert [r.composite["lpips"] for r in result.results] == vals
    assert result.summary["settings"]["lpips"]["available"]


def test_limit_subsets_and_compare(tmp_path, layouts) -> None:
    a = evaluate(layouts["harmonykit"], "identity", tmp_path / "a", _opts(limit=2))
    assert a.summary["counts"]["total"] == 2 and a.summary["settings"]["pairs_in_benchmark"] == 4
    evaluate(layouts["harmonykit"], "reinhard", tmp_path / "b", _opts(limit=2))
    text = compare_reports([load_report(tmp_path / "a"), load_report(tmp_path / "b")])
    lines = text.strip().splitlines()
    assert lines[0].startswith("| Method | Setting | N | MSE↓")
    assert [ln.split("|")[1].strip() for ln in lines[2:]] == ["Composite", "identity", "reinhard"]
    assert "oracle mask, 32" in lines[4]
    ih = evaluate(layouts["iharmony4"], "identity", tmp_path / "c", _opts(subsets=["HCOCO"]))
    assert ih.summary["settings"]["subsets"] == ["HCOCO"]
    mixed = compare_reports([load_report(tmp_path / "a"), load_report(tmp_path / "c")])
    assert mixed.startswith("> Warning")


def test_region_model_on_iharmony4_and_multi_mask(layouts) -> None:
    torch.manual_seed(0)
    model = create_model("srin_unet_tiny")  # mask required, SRIN region maps
    assert model.uses_regions and model.mask_use == "required"
    ih = evaluate(layouts["iharmony4"], model, None, _opts(regions="slic"))
    s = ih.summary["settings"]
    assert s["regions"] == "slic" and s["mask_given"] and not s["oracle_mask"]
    assert len(ih.results) == 4 and not ih.failures
    assert all(math.isfinite(r.model["mse"]) for r in ih.results)
    # composite_with_mask: outside the mask the output is the composite, so an empty mask
    # gives the composite back
    empty = [r for r in ih.results if r.fg_ratio == 0.0]
    assert [r.model["mse"] for r in empty] == [r.composite["mse"] for r in empty]
    multi = evaluate(layouts["harmonykit"], model, None, _opts(regions="felzenszwalb"))
    assert multi.summary["settings"]["oracle_mask"] and multi.summary["settings"]["regions"] == "felzenszwalb"


def test_non_finite_model_output_is_a_failure(layouts) -> None:
    model = create_model("om_unet_tiny")
    with torch.no_grad():
        next(model.head.parameters()).fill_(float("nan"))
    result = evaluate(layouts["harmonykit"], model, None, _opts())
    assert not result.results and len(result.failures) == 4 and result.exit_code == 1
    assert {f.stage for f in result.failures} == {"model"}
    assert "NaN" in result.failures[0].reason


def test_figure_keeps_worst_and_best_by_mse() -> None:
    from harmonykit.evaluation.figure import Extremes
    from harmonykit.evaluation.pairs import Prepared

    ext = Extremes(2)
    img = np.zeros((16, 16, 3), np.uint8)
    for i, mse in enumerate([5.0, 1.0, 9.0, 3.0, 7.0]):
        ext.add(mse, Prepared(f"i{i}", "s", img, img, np.zeros((16, 16), np.float32)), img)
    titles = [r.title.split("\n")[0] for r in ext.rows()]
    assert titles == ["worst 1: i2", "worst 2: i4", "best 1: i1", "best 2: i3"]
    few = Extremes(3)  # fewer images than 2k: no image shown twice
    for i, mse in enumerate([2.0, 1.0]):
        few.add(mse, Prepared(f"i{i}", "s", img, img, np.zeros((16, 16), np.float32)), img)
    assert [r.title.split("\n")[0] for r in few.rows()] == ["worst 1: i0", "worst 2: i1"]


def test_om_iou_paper_protocol_add_only_model_threshold_1e4(layouts, tiny_model_dir, tmp_path, capsys) -> None:
    from harmonykit.cli.main import main as cli
    from harmonykit.errors import ConfigError

    torch.manual_seed(0)
    model = create_model("om_unet_tiny", head="lab_add")
    with torch.no_grad():  # small add masks: above 1e-4 of a unit, below the default 0.01
        for p in model.head.parameters():
            p.add_(1e-3 * torch.randn_like(p))
    model_dir = model.save_pretrained(tmp_path / "add_only")
    paper = evaluate(layouts["harmonykit"], model_dir, None, _opts(om_iou_protocol="paper"))
    default = evaluate(layouts["harmonykit"], model_dir, None, _opts())
    same = evaluate(layouts["harmonykit"], model_dir, None, _opts(om_threshold=1e-4, om_iou_from="add"))
    assert paper.summary["settings"]["om_iou_protocol"] == "paper"
    assert paper.summary["settings"]["om_threshold_rel"] == M.OM_PAPER_THRESHOLD == 1e-4
    p_iou = [r.model["om_iou"] for r in paper.results]
    assert p_iou == [r.model["om_iou"] for r in same.results]
    # the first 3 pairs have a foreground (the last one's mask is empty)
    assert all(v > 0 for v in p_iou[:3]) and all(r.model["om_iou"] == 0 for r in default.results[:3])
    with pytest.raises(ConfigError, match="add-only"):  # a lab (mul + add) model is refused
        evaluate(layouts["harmonykit"], tiny_model_dir, None, _opts(om_iou_protocol="paper"))
    code = cli(["evaluate", str(layouts["harmonykit"]), "--model", str(model_dir), "--om-iou-protocol", "paper",
                "--om-threshold", "0.5", "--out", str(tmp_path / "r")])
    assert code == 2 and "drop --om-threshold" in capsys.readouterr().err
