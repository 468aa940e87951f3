"""Operator-mask models (Sg-MMH) and the RGB baseline: attention U-Net + head.

Registered models (:func:`harmonykit.models.create_model`; :mod:`harmonykit.models.zoo`
registers them as presets of :func:`build_unet_model`, and the functions of the same name
here are shortcuts for ``create_model(name, **kwargs)``); parameter counts are for the
default (``lab`` / ``rgb`` head, ``mask_use="never"``) configuration:

====================  =====  ===  ====  =======  ===========================================
name                  depth  ngf  head  params   use
====================  =====  ===  ====  =======  ===========================================
``om_unet``           8      64   lab   39.50 M  the paper's OM generator (Sg-MMH, sec. 4.1)
``om_unet_small``     6      16   lab   1.36 M   CPU-trainable size (the default model)
``om_unet_tiny``      4      8    lab   0.08 M   tests, smoke runs
``rgb_unet``          8      64   rgb   39.50 M  the paper's RGB baseline (Table 2 "RGB")
``rgb_unet_small``    6      16   rgb   1.36 M   the baseline at the small size
``rgb_unet_tiny``     4      8    rgb   0.08 M   tests
====================  =====  ===  ====  =======  ===========================================

Every builder accepts the same keyword arguments (the table's values are its defaults):

* ``depth``, ``ngf``, ``max_mult``, ``norm``, ``dropout``, ``dropout_blocks``,
  ``attention_levels``: the backbone (:class:`~harmonykit.models.unet.AttentionUNet`);
* ``head``: ``lab``, ``lab_add``, ``hls``, ``hls_add`` (operator masks,
  :class:`~harmonykit.models.heads.OperatorMaskHead`), ``rgb`` (direct RGB, the paper's
  baseline) or ``rgb_residual``; ``bounded``, ``scales``, ``kernel_size`` go to the head;
* ``mask_use``: ``"never"`` (the paper: the composite only, the network finds the
  inharmonious regions itself) or ``"optional"`` (a 4th input channel carries the
  foreground mask, zeros when none is given: one model that works with or without a mask);
* ``gate``: ``None`` (the paper) or ``"learned"``: one more output map, a localisation
  logit, whose sigmoid ``p`` gates the operator masks towards the identity
  (``mul = 1 + g (mul - 1)``, ``add = g add``; ``g = p`` without a mask, ``g = mask``
  when an ``optional`` model is given one), exposed as ``ModelOutput.localisation``
  (:class:`~harmonykit.models.heads.OperatorMaskHead`). Operator-mask heads only; adds
  ``9 * 2 ngf + 1`` parameters (289 for ``om_unet_small``). E.g.
  ``create_model("om_unet_small", mask_use="optional", gate="learned")``;
* ``mask_free``: ``"gate"`` (one pass) or ``"two_stage"`` (a gated ``optional`` model only:
  without a mask, a first pass localises and a second runs the mask-given model with the
  localisation ``p`` as a soft mask, ``p ** two_stage_power``;
  :class:`~harmonykit.models.base.HarmonizationModel`);
* ``localiser``: ``"shared"`` (the two-stage first pass is the model itself) or
  ``"separate"`` (``mask_free="two_stage"`` only: a second network of the same architecture,
  with its own weights, localises every sample and the harmonizer always runs with a mask:
  twice the parameters, and localising no longer competes with harmonizing for them; its
  weights are ``localiser.*``, and a warm start from a shared model fills both).

Configurations are JSON-able (strings, numbers, lists, dicts), which is what
``save_pretrained`` records; a callable ``norm`` works but cannot be saved.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harmonykit.models.base import HarmonizationModel
from harmonykit.models.heads import HEADS, create_head
from harmonykit.models.layers import NormSpec
from harmonykit.models.registry import create_model
from harmonykit.models.unet import AttentionUNet

__all__ = [
    "build_unet_model",
    "check_wiring",
    "assemble",
    "LOCALISERS",
    "PAPER",
    "SMALL",
    "TINY",
    "om_unet",
    "om_unet_small",
    "om_unet_tiny",
    "rgb_unet",
    "rgb_unet_small",
    "rgb_unet_tiny",
]

#: backbone sizes of the registered variants
PAPER: dict[str, Any] = {"depth": 8, "ngf": 64}
SMALL: dict[str, Any] = {"depth": 6, "ngf": 16}
TINY: dict[str, Any] = {"depth": 4, "ngf": 8}

_MASK_USES = ("never", "optional")
#: ``localiser``: the two-stage first pass is the model itself, or a copy with its own weights
LOCALISERS = ("shared", "separate")


def build_unet_model(
    *,
    depth: int = 8,
    ngf: int = 64,
    head: str = "lab",
    mask_use: str = "never",
    max_mult: int = 8,
    norm: NormSpec = "in",
    dropout: float = 0.5,
    dropout_blocks: Sequence[int] | None = None,
    attention_levels: Sequence[int] | None = None,
    bounded: bool = True,
    scales: Mapping[str, float] | None = None,
    kernel_size: int = 3,
    gate: str | None = None,
    mask_free: str = "gate",
    two_stage_power: float = 1.0,
    localiser: str = "shared",
) -> HarmonizationModel:
    """Wire an :class:`AttentionUNet` and a head into a :class:`HarmonizationModel`.

    Args: see the module docstring. ``bounded``, ``scales`` and ``gate`` apply to
    operator-mask heads only.

    Raises:
        ValueError: unknown ``head`` (:class:`~harmonykit.registry.UnknownNameError`),
            ``mask_use`` or ``gate``, a gate on an RGB head, or invalid backbone settings.

    >>> m = build_unet_model(depth=3, ngf=4, head="hls_add", mask_use="optional")
    >>> m.backbone.in_channels, m.head.channels, m.mask_use
    (4, ('h_add', 'l_add', 's_add'), 'optional')
    >>> build_unet_model(depth=3, ngf=4, gate="learned").has_localisation
    True
    """
    check_wiring(mask_use, mask_free, localiser, head)
    head_kw: dict[str, Any] = {"kernel_size": kernel_size}
    if not head.startswith("rgb"):
        head_kw.update(bounded=bounded, scales=scales, gate=gate)
    elif scales is not None:
        raise ValueError(f"scales apply to operator-mask heads, not to head {head!r}")
    elif gate is not None:
        raise ValueError(f"gate applies to operator-mask heads, not to head {head!r}")

    def network() -> HarmonizationModel:
        backbone = AttentionUNet(
            in_channels=3 if mask_use == "never" else 4,
            ngf=ngf,
            depth=depth,
            max_mult=max_mult,
            norm=norm,
            dropout=dropout,
            dropout_blocks=dropout_blocks,
            attention_levels=attention_levels,
        )
        return HarmonizationModel(backbone, create_head(head, backbone.out_channels, **head_kw), mask_use=mask_use)

    return assemble(network, mask_use, mask_free, two_stage_power, localiser)


def check_wiring(mask_use: str, mask_free: str, localiser: str, head: str) -> None:
    """Validate the arguments every operator-mask builder shares (before anything is built).

    Raises:
        ValueError: an unknown ``mask_use``, ``localiser`` or ``head``
            (:class:`~harmonykit.registry.UnknownNameError`), or a separate localiser
            without ``mask_free="two_stage"``.
    """
    if mask_use not in _MASK_USES:
        raise ValueError(f"mask_use must be one of {_MASK_USES}, got {mask_use!r}")
    if localiser not in LOCALISERS:
        raise ValueError(f"localiser must be one of {LOCALISERS}, got {localiser!r}")
    if localiser == "separate" and mask_free != "two_stage":
        raise ValueError("localiser='separate' needs mask_free='two_stage'")
    if head not in HEADS:
        raise HEADS.error(head)


def assemble(network: Callable[[], HarmonizationModel], mask_use: str, mask_free: str, two_stage_power: float,
             localiser: str) -> HarmonizationModel:
    """The model of ``network()`` (a backbone + head wired into a one-pass model) with its
    mask-free mode; with ``localiser="separate"`` a second ``network()`` (the same
    architecture, its own weights) is the localiser: one pass, only its localisation used."""
    main = network()
    loc = network() if localiser == "separate" else None
    return HarmonizationModel(main.backbone, main.head, mask_use=mask_use, mask_free=mask_free,  # type: ignore[arg-type]
                              two_stage_power=two_stage_power, localiser=loc)


def om_unet(**kwargs: Any) -> HarmonizationModel:
    """The paper's operator-mask generator: depth 8, ngf 64, ``lab`` head (39.5 M params).

    Same as ``create_model("om_unet", **kwargs)`` (the configuration is recorded);
    keyword arguments: see :func:`build_unet_model`.
    """
    return create_model("om_unet", **kwargs)


def om_unet_small(**kwargs: Any) -> HarmonizationModel:
    """CPU-trainable operator-mask model: depth 6, ngf 16, ``lab`` head (1.36 M params)."""
    return create_model("om_unet_small", **kwargs)


def om_unet_tiny(**kwargs: Any) -> HarmonizationModel:
    """Tiny operator-mask model for tests: depth 4, ngf 8, ``lab`` head.

    >>> om_unet_tiny(head="hls").config
    {'name': 'om_unet_tiny', 'kwargs': {'head': 'hls'}}
    """
    return create_model("om_unet_tiny", **kwargs)


def rgb_unet(**kwargs: Any) -> HarmonizationModel:
    """The paper's RGB baseline: the same U-Net with a direct RGB output (39.5 M params)."""
    return create_model("rgb_unet", **kwargs)


def rgb_unet_small(**kwargs: Any) -> HarmonizationModel:
    """RGB baseline at the small size: depth 6, ngf 16."""
    return create_model("rgb_unet_small", **kwargs)


def rgb_unet_tiny(**kwargs: Any) -> HarmonizationModel:
    """Tiny RGB baseline for tests: depth 4, ngf 8."""
    return create_model("rgb_unet_tiny", **kwargs)
