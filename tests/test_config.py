"""Tests of harmonykit.config: typed dataclasses <-> YAML, overrides, errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from harmonykit.config import (
    apply_overrides,
    dump_config,
    from_dict,
    load_config,
    parse_override,
    to_dict,
)
from harmonykit.errors import ConfigError


@dataclass
class Optim:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.99)
    milestones: list[int] = field(default_factory=list)
    iterations: int = 100


@dataclass
class Data:
    kind: Literal["onthefly", "benchmark"] = "onthefly"
    images: Path | None = None
    size: int = 256


@dataclass
class Gan:
    discriminator: str = "patch_gan"
    init_from: Path | None = None


@dataclass
class Model:
    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Cfg:
    model: Model
    optim: Optim = field(default_factory=Optim)
    data: Data = field(default_factory=Data)
    gan: Gan | None = None
    seed: int = 0
    amp: Literal["off", "bf16", "fp16"] = "off"

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_load_nested_and_yaml11_numbers(tmp_path):
    p = write(tmp_path, "model: {name: om_unet, kwargs: {ngf: 8}}\noptim:\n  lr: 2e-4\n  iterations: 40e3\n  milestones: [20000, 30000]\n")
    cfg = load_config(p, Cfg)
    assert cfg.model == Model("om_unet", {"ngf": 8})
    assert cfg.optim.lr == 2e-4 and isinstance(cfg.optim.lr, float)
    assert cfg.optim.iterations == 40000 and isinstance(cfg.optim.iterations, int)
    assert cfg.optim.milestones == [20000, 30000]
    assert cfg.optim.betas == (0.9, 0.99)
    assert cfg.gan is None and cfg.data.kind == "onthefly"


def test_overrides_dotted_paths_and_optional_section(tmp_path):
    p = write(tmp_path, "model: {name: a}\n")
    cfg = load_config(
        p,
        Cfg,
        ["optim.lr=1e-4", "data.images=~/Pictures", "optim.betas=[0.5, 0.999]", "gan.init_from=runs/om",
         "model.kwargs.depth=3", "amp=bf16"],
    )
    assert cfg.optim.lr == 1e-4
    assert cfg.data.images == Path("~/Pictures").expanduser()
    assert cfg.optim.betas == (0.5, 0.999)
    assert cfg.gan == Gan("patch_gan", Path("runs/om"))
    assert cfg.model.kwargs == {"depth": 3}
    assert cfg.amp == "bf16"


def test_unknown_keys_name_the_key_and_list_valid_ones(tmp_path):
    p = write(tmp_path, "model: {name: a}\noptim: {lrr: 1}\n")
    with pytest.raises(ConfigError) as e:
        load_config(p, Cfg)
    msg = str(e.value)
    assert str(p) in msg and "'optim.lrr'" in msg and "lr, betas, milestones, iterations" in msg
    p = write(tmp_path, "model: {name: a}\n")
    with pytest.raises(ConfigError, match=r"unknown key 'data\.sizee'.*images, size"):
        load_config(p, Cfg, ["data.sizee=3"])
    with pytest.raises(ConfigError, match=r"'seed' is a int, not a section"):
        load_config(p, Cfg, ["seed.x=3"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(p, Cfg, ["seed"])


def test_type_and_literal_errors(tmp_path):
    p = write(tmp_path, "model: {name: a}\n")
    with pytest.raises(ConfigError, match=r"amp: 'fp8' is not one of 'off', 'bf16', 'fp16'"):
        load_config(p, Cfg, ["amp=fp8"])
    with pytest.raises(ConfigError, match=r"optim.iterations: expected an integer, got 1.5"):
        load_config(p, Cfg, ["optim.iterations=1.5"])
    with pytest.raises(ConfigError, match=r"optim.lr: expected a number, got 'fast'"):
        load_config(p, Cfg, ["optim.lr=fast"])
    with pytest.raises(ConfigError, match=r"optim.betas: expected 2 values, got 3"):
        load_config(p, Cfg, ["optim.betas=[1, 2, 3]"])
    with pytest.raises(ConfigError, match=r"missing required key 'model'"):
        load_config(write(tmp_path, "seed: 1\n", "norequired.yaml"), Cfg)
    with pytest.raises(ConfigError, match=r"seed must be >= 0"):
        load_config(p, Cfg, ["seed=-1"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml", Cfg)
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(write(tmp_path, "model: [\n", "bad.yaml"), Cfg)


def test_dump_roundtrip(tmp_path):
    cfg = from_dict(Cfg, {"model": {"name": "m", "kwargs": {"ngf": 4}}, "gan": {"init_from": "/x/y"}, "data": {"images": "/p"}})
    out = tmp_path / "o" / "config.yaml"
    text = dump_config(cfg, out)
    assert out.read_text() == text
    assert "init_from: /x/y" in text
    assert load_config(out, Cfg) == cfg
    assert to_dict(cfg)["optim"]["betas"] == [0.9, 0.99]


def test_parse_override_values():
    assert parse_override("a.b=1e-4") == (["a", "b"], "1e-4")  # YAML 1.1: a string, coerced later
    assert parse_override("a=null") == (["a"], None)
    assert parse_override("a=true") == (["a"], True)
    assert parse_override("a=x=y") == (["a"], "x=y")
    assert apply_overrides({"optim": {"lr": 1}}, ["optim.iterations=5"], Cfg) == {"optim": {"lr": 1, "iterations": 5}}
