"""The benchmark builder's stages: plan_build (nothing built), run_build (samples and
records, no manifest yet), finalise_build (manifest and benchmark.json); their composition
is build_benchmark, byte for byte. Skips are logged."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmonykit.data.builder import (
    BuildError,
    BuildPlan,
    BuildSettings,
    build_benchmark,
    finalise_build,
    plan_build,
    run_build,
)


@pytest.fixture
def source(tmp_path, astronaut, chelsea, coffee) -> BuildSettings:
    """Three photos with 4x4-block label maps, plus an unreadable one (with a label map)."""
    imgs, labs = tmp_path / "imgs", tmp_path / "labels"
    imgs.mkdir()
    labs.mkdir()
    lab = np.kron(np.arange(1, 17, dtype=np.uint8).reshape(4, 4), np.ones((12, 16), np.uint8))
    for name, arr in (("astronaut", astronaut), ("chelsea", chelsea), ("coffee", coffee)):
        Image.fromarray(arr).resize((64, 48), Image.Resampling.BILINEAR).save(imgs / f"{name}.jpg", quality=90)
        Image.fromarray(lab, "L").save(labs / f"{name}.png")
    (imgs / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    Image.fromarray(lab, "L").save(labs / "broken.png")
    return BuildSettings(source=str(imgs), labels=str(labs), size=32, seed=3)


def _tree(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "lock"}


def test_plan_sorts_the_items_and_builds_nothing(source, tmp_path):
    out = tmp_path / "out"
    plan = plan_build(source, out)
    assert isinstance(plan, BuildPlan) and plan.ids == ["astronaut", "broken", "chelsea", "coffee"]
    assert [it.id for it in plan.todo] == ["astronaut", "broken", "chelsea", "coffee"]  # broken fails on decode
    assert plan.skips == [] and plan.already_done == 0 and plan.selected == 4 and plan.subset is None
    assert plan.stored_settings["seed"] == 3 and plan.references is None
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        ".build/lock", ".build/settings.json"]  # prepared, nothing built
    # shards and limits pick from the same sorted ids
    assert [it.id for it in plan_build(source, out, shard=(1, 2)).todo] == ["broken", "coffee"]
    assert plan_build(source, out, limit=2).ids == ["astronaut", "broken"]
    with pytest.raises(BuildError, match="--limit"):
        plan_build(source, out, limit=0)


def test_run_then_finalise_equals_build_benchmark(source, tmp_path, caplog):
    full = tmp_path / "full"
    build_benchmark(source, full, show_progress=False)
    out = tmp_path / "staged"
    plan = plan_build(source, out)
    with caplog.at_level(logging.WARNING, logger="harmonykit.data.builder"):
        report = run_build(plan, show_progress=False)
    assert report.built == 3 and [s.id for s in report.skipped] == ["broken"] and report.selected == 4
    assert "skipped broken:" in caplog.text and "broken.jpg" in caplog.text  # each skip is logged
    assert (out / "composite" / "chelsea.png").is_file() and (out / ".build" / "records" / "chelsea.json").is_file()
    assert not (out / "manifest.jsonl").exists() and not (out / "benchmark.json").exists()
    assert finalise_build(plan, report) is report and report.finished == 3 and report.complete
    assert _tree(out) == _tree(full)
    # a new plan of the finished folder has nothing left to build but the known-bad item
    again = plan_build(source, out)
    assert again.already_done == 3 and [it.id for it in again.todo] == ["broken"]


def test_known_problems_are_recorded_by_run_build(source, tmp_path):
    Path(source.labels, "coffee.png").unlink()  # listed by the source as "no label map"
    out = tmp_path / "out"
    plan = plan_build(source, out)
    assert [s.id for s in plan.skips] == ["coffee"] and "coffee" not in {it.id for it in plan.todo}
    assert not (out / ".build" / "skipped").exists()  # planning records nothing
    seen = []
    report = finalise_build(plan, run_build(plan, on_skip=seen.append, show_progress=False))
    assert [s.id for s in seen] == ["coffee", "broken"]  # known ones first, then as they happen
    bench = json.loads((out / "benchmark.json").read_text())
    assert [s["id"] for s in bench["skipped"]] == ["broken", "coffee"] and report.complete


def test_bad_workers_are_refused_before_anything_is_written(source, tmp_path):
    with pytest.raises(BuildError, match="--workers"):
        build_benchmark(source, tmp_path / "o", workers=0)
    assert not (tmp_path / "o").exists()
    with pytest.raises(BuildError, match="--workers"):
        run_build(plan_build(source, tmp_path / "p"), workers=0)
