"""The one registry type (harmonykit.registry.Registry) and the registries built on it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harmonykit.errors import ConfigError, HarmonykitError
from harmonykit.registry import Registry, UnknownNameError


@pytest.fixture
def shapes() -> Registry[Callable[..., str]]:
    reg: Registry[Callable[..., str]] = Registry("shape")

    @reg.register()
    def square(side: int = 1) -> str:
        return f"square {side}"

    @reg.register("circle")
    def _round(radius: int = 1, *, filled: bool = False) -> str:
        return f"{'filled ' if filled else ''}circle {radius}"

    reg.register("triangle", lambda: "triangle")  # a plain call
    return reg


def test_register_and_create(shapes) -> None:
    assert shapes.create("square", side=3) == "square 3"
    assert shapes.create("circle", 2, filled=True) == "filled circle 2"  # positional args too
    assert shapes.create("triangle") == "triangle"
    assert shapes.get("square")() == "square 1"
    assert shapes["circle"]() == "circle 1"


def test_decorator_returns_the_object_and_stacks() -> None:
    reg: Registry[Callable[..., int]] = Registry("number")

    def one() -> int:
        return 1

    assert reg.register()(one) is one  # the default name is the function's
    assert reg.register("uno", one) is one  # a plain call returns the object too
    assert reg.names() == ["one", "uno"] and reg.get("uno") is reg.get("one") is one


def test_decorator_stacking_registers_under_every_name() -> None:
    reg: Registry[Callable[..., int]] = Registry("number")

    @reg.register("two")
    @reg.register("deux")
    def _two() -> int:
        return 2

    assert reg.names() == ["deux", "two"] and reg.create("deux") == reg.create("two") == 2


def test_names_sorted_iteration_in_registration_order(shapes) -> None:
    assert shapes.names() == ["circle", "square", "triangle"]
    assert list(shapes) == ["square", "circle", "triangle"]
    assert [n for n, _ in shapes.items()] == list(shapes)
    assert len(shapes) == 3
    assert "Registry('shape'" in repr(shapes)


def test_fnmatch_listing(shapes) -> None:
    assert shapes.list() == shapes.names()
    assert shapes.list("*le") == ["circle", "triangle"]
    assert shapes.list("s?uare") == ["square"]
    assert shapes.list("[ct]*") == ["circle", "triangle"]
    assert shapes.list("Square") == []  # case-sensitive
    assert shapes.list("nothing*") == []


def test_contains(shapes) -> None:
    assert "square" in shapes and "hexagon" not in shapes
    assert None not in shapes and 3 not in shapes  # non-strings are never names


def test_duplicate_registration_is_an_error(shapes) -> None:
    with pytest.raises(ValueError, match="shape 'square' is already registered"):
        shapes.register("square", lambda: "other square")
    with pytest.raises(ValueError, match="already registered"):

        @shapes.register()
        def square() -> str:
            return "again"

    assert shapes.create("square") == "square 1"  # unchanged
    shapes.register("square", lambda: "new square", overwrite=True)
    assert shapes.create("square") == "new square"


def test_unknown_name_lists_the_valid_names(shapes) -> None:
    with pytest.raises(UnknownNameError) as info:
        shapes.create("hexagon")
    err = info.value
    assert str(err) == "unknown shape 'hexagon'; expected one of: circle, square, triangle"
    assert err.kind == "shape" and err.name == "hexagon" and err.valid == ["circle", "square", "triangle"]
    # a user mistake (the CLI prints it without traceback), a ValueError and a KeyError
    assert isinstance(err, ConfigError) and isinstance(err, HarmonykitError)
    assert isinstance(err, ValueError) and isinstance(err, KeyError)
    with pytest.raises(KeyError):
        shapes["hexagon"]
    with pytest.raises(UnknownNameError, match="unknown shape 7"):
        shapes.get(7)
    assert str(shapes.error("x")) == "unknown shape 'x'; expected one of: circle, square, triangle"
    with pytest.raises(UnknownNameError, match=r"unknown thing 'a'; expected one of: \(no thing is registered\)"):
        Registry("thing").get("a")


def test_unregister(shapes) -> None:
    fn = shapes.get("triangle")
    assert shapes.unregister("triangle") is fn
    assert "triangle" not in shapes and shapes.names() == ["circle", "square"]
    with pytest.raises(UnknownNameError):
        shapes.unregister("triangle")
    shapes.register("triangle", fn)  # the name is free again


def test_case_insensitive_registry() -> None:
    reg: Registry[Callable[..., str]] = Registry("norm", case_insensitive=True)
    reg.register("In", lambda: "instance")
    assert reg.names() == ["in"]
    assert "IN" in reg and reg.create("iN") == "instance"
    assert reg.list("I*") == ["in"]
    with pytest.raises(ValueError, match="norm 'in' is already registered"):
        reg.register("IN", lambda: "other")
    with pytest.raises(UnknownNameError, match="unknown norm 'BN'; expected one of: in"):
        reg.get("BN")


def test_register_needs_a_name() -> None:
    reg: Registry[Callable[..., object]] = Registry("thing")
    with pytest.raises(TypeError, match="with parentheses"):
        reg.register(lambda: 1)  # type: ignore[call-overload]  # @reg.register without ()
    with pytest.raises(ValueError, match="no name"):
        reg.register("", lambda: 1)


def test_every_package_registry_is_a_registry() -> None:
    from harmonykit.baselines import BASELINES
    from harmonykit.data.perturb.ops import OPS
    from harmonykit.models import MODELS
    from harmonykit.models.discriminator import DISCRIMINATORS
    from harmonykit.models.heads import HEADS
    from harmonykit.models.layers import ACTS, NORMS
    from harmonykit.models.norms import REGION_NORMS

    registries = {
        "model": MODELS,
        "head": HEADS,
        "norm": NORMS,
        "activation": ACTS,
        "region norm": REGION_NORMS,
        "discriminator": DISCRIMINATORS,
        "operation": OPS,
        "baseline": BASELINES,
    }
    for kind, reg in registries.items():
        assert isinstance(reg, Registry) and reg.kind == kind and len(reg) > 0
        with pytest.raises(UnknownNameError, match=f"unknown {kind} 'no-such-name'; expected one of: "):
            reg.get("no-such-name")
    assert len({id(r) for r in registries.values()}) == len(registries)
