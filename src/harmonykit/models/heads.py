"""Model heads: backbone features -> :class:`~harmonykit.models.base.ModelOutput`.

Heads are backbone-agnostic: ``head(features, image, mask=None)`` takes features
``(B, F, h, w)`` from any backbone and the composite ``image`` ``(B, 3, H, W)`` RGB in
``[0, 1]``. Features are normally at the image's resolution; at a lower resolution the
operator masks are upsampled (bilinear) before being applied.

Operator-mask heads (:class:`OperatorMaskHead`, Sg-MMH eq. 2)
--------------------------------------------------------------

A padded ``k x k`` convolution maps the features to ``C`` raw maps, one per operator
channel (:data:`harmonykit.operators.CHANNEL_SETS`: ``lab``, ``lab_add``, ``hls``,
``hls_add``), turned into operator values in natural units
(:func:`raw_to_operator_values`)::

    mul = 1 + s * f(raw)        add = s * f(raw)        f = tanh (bounded=True) or identity

with per-channel scales ``s`` (:data:`DEFAULT_SCALES`):

=========  ============================  ==========================================
space      channel                       scale (= bound when ``bounded``)
=========  ============================  ==========================================
lab        ``l_mul a_mul b_mul``          1.0  -> factors in ``(0, 2)``
lab        ``l_add``                      50 L units (L is 0..100)
lab        ``a_add b_add``                50 CIELAB units (a/b span about +-100)
hls        ``h_mul``                      0.5  -> factor in ``(0.5, 1.5)``
hls        ``h_add``                      180 degrees (the whole hue circle)
hls        ``l_mul s_mul``                1.0  -> factors in ``(0, 2)``
hls        ``l_add s_add``                1.0 (HLS lightness / saturation are 0..1)
=========  ============================  ==========================================

The bounds cover what the benchmark perturbations need (LAB scaling by 0.8..1.2,
pilgram filters, hue rotations up to 180 degrees) while keeping a runaway prediction from
producing absurd values; ``bounded=False`` gives the reference code's unbounded ``add``
(the reference also used ReLU on ``mul``, which cannot start at identity). The scales also
act as per-channel gains: one unit of ``raw`` moves ``l_add`` by 50 L units at most.

The final convolution is zero-initialised (``zero_init=True``): an untrained model
returns its input exactly (``mul = 1``, ``add = 0``) - the reference code starts far from
identity (``mul ~ 0``), which the reference notes list as a bug. With a zero final
layer, the first backward pass only reaches the head's own weights; from the second step
on the gradient flows into the backbone.

Localisation gate (``gate="learned"``)
--------------------------------------

An optional ``C + 1``-th output channel (its own zero-initialised weights,
:attr:`OperatorMaskHead.gate_out`, run in the same convolution as the operator channels)
predicts a localisation logit; ``p = sigmoid(logit)`` is "what the model thinks was
pasted". The operator values are gated towards the identity::

    mul = 1 + g * (mul - 1)        add = g * add

with ``g = p`` when the model has no mask, and ``g = mask`` (resized to the masks' size)
for the samples of a batch whose mask is given: a sample whose mask is all zeros counts as
"no mask" (the ``mask_use="optional"`` convention), so mask-free and mask-given samples
can share a batch. With a mask, nothing outside it changes (where ``g == 0`` the head
returns its input exactly). The gated values are what :class:`OperatorMasks` holds, so
editing, saving and the full-resolution apply work on them unchanged. The logit is
returned as ``ModelOutput.localisation_logit`` (``ModelOutput.localisation`` = ``p``).
The gate convolution is a separate module, so the weights of an ungated model load into a
gated one with only ``head.gate_out.*`` missing (warm start).

RGB heads (:class:`RGBHead`)
----------------------------

``mode="direct"`` is the paper's baseline (DoveNet / pix2pix: the last convolution
followed by ``tanh`` on images normalised to ``[-1, 1]``), here ``(tanh(raw) + 1) / 2``
so that the output is in ``[0, 1]``. ``mode="residual"`` predicts a change
``clamp(image + tanh(raw), 0, 1)`` from a zero-initialised convolution (identity start);
it is not in the paper.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harmonykit.models.base import ModelOutput
from harmonykit.models.layers import ActSpec, get_act_layer
from harmonykit.operators import CHANNEL_SETS, SPACES, OperatorMasks
from harmonykit.registry import Registry

__all__ = [
    "DEFAULT_SCALES",
    "HEAD_NAMES",
    "raw_to_operator_values",
    "retouch",
    "GATES",
    "gate_values",
    "OperatorMaskHead",
    "RGBHead",
    "HEADS",
    "create_head",
]

#: per colour space, the scale of each operator channel (see the module docstring)
DEFAULT_SCALES: dict[str, dict[str, float]] = {
    "lab": {"l_mul": 1.0, "l_add": 50.0, "a_mul": 1.0, "a_add": 50.0, "b_mul": 1.0, "b_add": 50.0},
    "hls": {"h_mul": 0.5, "h_add": 180.0, "l_mul": 1.0, "l_add": 1.0, "s_mul": 1.0, "s_add": 1.0},
}

#: localisation gates of :class:`OperatorMaskHead` (``None``: no gate)
GATES: tuple[str, ...] = ("learned",)


def _resolve_channels(
    channels: str | Sequence[str], space: str | None
) -> tuple[tuple[str, ...], str]:
    if isinstance(channels, str):
        if channels not in CHANNEL_SETS:
            raise ValueError(
                f"unknown operator channel set {channels!r}; expected one of {sorted(CHANNEL_SETS)}"
            )
        names = CHANNEL_SETS[channels]
        space = space or channels.split("_")[0]
    else:
        names = tuple(channels)
        space = space or "lab"
    if space not in SPACES:
        raise ValueError(f"unknown operator space {space!r}; expected one of {sorted(SPACES)}")
    if not names:
        raise ValueError("an operator-mask head needs at least one channel")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate operator channels in {names}")
    for name in names:
        comp, _, op = name.partition("_")
        if comp not in SPACES[space] or op not in ("mul", "add"):
            raise ValueError(f"invalid operator channel {name!r} for space {space!r}")
    return names, space


def _scale_vector(
    names: tuple[str, ...], space: str, scales: Mapping[str, float] | None
) -> list[float]:
    table = dict(DEFAULT_SCALES[space])
    if scales:
        unknown = set(scales) - set(names)
        if unknown:
            raise ValueError(
                f"scales given for channels {sorted(unknown)} that the head does not have {names}"
            )
        table.update({k: float(v) for k, v in scales.items()})
    out = [table[n] for n in names]
    if any(s <= 0 for s in out):
        raise ValueError(f"operator scales must be positive, got {dict(zip(names, out))}")
    return out


def raw_to_operator_values(
    raw: Tensor,
    channels: Sequence[str],
    space: str = "lab",
    scales: Mapping[str, float] | Tensor | None = None,
    bounded: bool = True,
) -> Tensor:
    """Map raw network outputs to operator values in natural units.

    Args:
        raw: ``(B, C, h, w)`` unconstrained maps; ``0`` is the identity operator.
        channels: the ``C`` channel names (``l_mul``, ``l_add``...).
        space: ``"lab"`` or ``"hls"``.
        scales: per-channel scales, a mapping name -> scale overriding
            :data:`DEFAULT_SCALES`, or a ``(C,)`` tensor; ``None`` uses the defaults.
        bounded: squash with ``tanh`` so that ``|value - identity| < scale``.

    Returns:
        ``(B, C, h, w)`` values: ``mul = 1 + s * f(raw)``, ``add = s * f(raw)``.

    >>> raw = torch.zeros(1, 6, 2, 2)
    >>> raw_to_operator_values(raw, CHANNEL_SETS["lab"])[0, :, 0, 0].tolist()
    [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    >>> raw = torch.full((1, 3, 1, 1), 100.0)
    >>> raw_to_operator_values(raw, CHANNEL_SETS["lab_add"]).flatten().tolist()
    [50.0, 50.0, 50.0]
    """
    names, space = _resolve_channels(tuple(channels), space)
    if raw.dim() != 4 or raw.shape[1] != len(names):
        raise ValueError(
            f"expected raw (B, {len(names)}, h, w) for channels {names}, got {tuple(raw.shape)}"
        )
    if isinstance(scales, Tensor):
        s = scales.to(device=raw.device, dtype=raw.dtype).reshape(1, -1, 1, 1)
        if s.shape[1] != len(names):
            raise ValueError(f"expected {len(names)} scales, got {tuple(scales.shape)}")
    else:
        s = torch.tensor(
            _scale_vector(names, space, scales), dtype=raw.dtype, device=raw.device
        ).view(1, -1, 1, 1)
    offset = torch.tensor(
        [1.0 if n.endswith("_mul") else 0.0 for n in names], dtype=raw.dtype, device=raw.device
    )
    x = torch.tanh(raw) if bounded else raw
    return offset.view(1, -1, 1, 1) + s * x


def retouch(
    image: Tensor,
    raw: Tensor,
    channels: Sequence[str],
    space: str = "lab",
    scales: Mapping[str, float] | Tensor | None = None,
    bounded: bool = True,
) -> tuple[Tensor, OperatorMasks]:
    """Differentiable retoucher: raw maps -> operator masks -> retouched image.

    Args:
        image: ``(B, 3, H, W)`` RGB in ``[0, 1]``.
        raw: ``(B, C, h, w)`` raw maps (any ``h, w``; resized bilinearly to ``H, W``).
        channels, space, scales, bounded: see :func:`raw_to_operator_values`.

    Returns:
        ``(retouched (B, 3, H, W) in [0, 1], OperatorMasks at (h, w))``.

    >>> img = torch.rand(1, 3, 4, 4)
    >>> out, om = retouch(img, torch.zeros(1, 3, 2, 2), CHANNEL_SETS["hls_add"], "hls")
    >>> om.channels, om.size, bool((out - img).abs().max() < 1e-5)
    (('h_add', 'l_add', 's_add'), (2, 2), True)
    """
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"expected image (B, 3, H, W), got {tuple(image.shape)}")
    values = raw_to_operator_values(raw, channels, space, scales, bounded)
    masks = OperatorMasks(values, tuple(channels), space)
    return masks.apply(image), masks


def gate_values(values: Tensor, channels: Sequence[str], gate: Tensor) -> Tensor:
    """Gate operator values towards the identity: ``mul -> 1 + g (mul - 1)``, ``add -> g add``.

    Args:
        values: ``(B, C, h, w)`` operator values (natural units).
        channels: the ``C`` channel names.
        gate: ``(B, 1, h, w)`` in ``[0, 1]`` (``0``: identity, ``1``: unchanged).

    Returns:
        ``(B, C, h, w)`` gated values.

    >>> v = torch.tensor([1.5, 20.0]).view(1, 2, 1, 1)
    >>> gate_values(v, ("l_mul", "l_add"), torch.full((1, 1, 1, 1), 0.5)).flatten().tolist()
    [1.25, 10.0]
    """
    if gate.dim() != 4 or gate.shape[1] != 1 or gate.shape[0] != values.shape[0] or gate.shape[-2:] != values.shape[-2:]:
        raise ValueError(f"expected gate ({values.shape[0]}, 1, {values.shape[-2]}, {values.shape[-1]}), got {tuple(gate.shape)}")
    ident = torch.tensor([1.0 if n.endswith("_mul") else 0.0 for n in channels], dtype=values.dtype,
                         device=values.device).view(1, -1, 1, 1)
    return ident + gate.to(values.dtype) * (values - ident)


def _same_pad(x: Tensor, pad: int) -> Tensor:
    if pad == 0:
        return x
    mode = "reflect" if min(x.shape[-2:]) > pad else "replicate"
    return F.pad(x, (pad, pad, pad, pad), mode=mode)


class _OutConv(nn.Module):
    """``act -> reflection pad -> k x k conv`` (replicate padding on maps too small to reflect)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, act: ActSpec, zero_init: bool
    ) -> None:
        super().__init__()
        if not isinstance(in_channels, int) or in_channels <= 0:
            raise ValueError(f"in_channels must be a positive int, got {in_channels!r}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        self.act = get_act_layer(act)
        self.pad = kernel_size // 2
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size)
        if zero_init:
            nn.init.zeros_(self.conv.weight)
            nn.init.zeros_(self.conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.conv.in_channels:
            raise ValueError(
                f"expected features (B, {self.conv.in_channels}, h, w), got {tuple(x.shape)}"
            )
        return self.conv(_same_pad(self.act(x), self.pad))


def _check_image(image: Tensor, features: Tensor) -> None:
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"expected image (B, 3, H, W), got {tuple(image.shape)}")
    if image.shape[0] != features.shape[0]:
        raise ValueError(
            f"batch sizes differ: features {tuple(features.shape)}, image {tuple(image.shape)}"
        )


class OperatorMaskHead(nn.Module):
    """Features -> operator masks -> retouched image (Sg-MMH).

    Args:
        in_channels: feature channels ``F``.
        channels: a channel-set name (``lab``, ``lab_add``, ``hls``, ``hls_add``) or a
            sequence of channel names (then give ``space``).
        space: ``"lab"`` or ``"hls"``; inferred from a set name.
        kernel_size: size of the output convolution (odd; the paper: 3).
        bounded: squash raw outputs with ``tanh`` (see the module docstring).
        scales: per-channel scale overrides, e.g. ``{"l_add": 30.0}``.
        zero_init: zero the output convolution so the head starts at identity.
        act: activation applied to the features first (``None``: they are already
            activated, as the attention U-Net's are).
        gate: ``None`` (no gate) or ``"learned"``: a localisation logit gates the operator
            masks (see the module docstring).

    Forward:
        ``features (B, F, h, w)``, ``image (B, 3, H, W)`` RGB in ``[0, 1]``, ``mask``
        ``(B, 1, H, W)`` in ``[0, 1]`` or ``None`` (ignored without a gate; with a gate, a
        sample's mask is used as the gate unless it is all zeros) -> :class:`ModelOutput`
        with ``image (B, 3, H, W)`` in ``[0, 1]``, ``operator_masks`` ``(B, C, h, w)``
        (gated) and, with a gate, ``localisation_logit`` ``(B, 1, h, w)`` (float32). The
        retoucher runs outside autocast in at least float32 (under mixed precision the
        output is float32).

    >>> head = OperatorMaskHead(8, "lab")
    >>> img = torch.rand(2, 3, 5, 7)
    >>> out = head(torch.randn(2, 8, 5, 7), img)
    >>> out.operator_masks.channels
    ('l_mul', 'l_add', 'a_mul', 'a_add', 'b_mul', 'b_add')
    >>> bool((out.image - img).abs().max() < 1e-4)
    True
    >>> gated = OperatorMaskHead(8, "lab", gate="learned")
    >>> out = gated(torch.randn(2, 8, 5, 7), img)
    >>> out.localisation.shape, float(out.localisation.detach().mean())  # zero-initialised: p = 0.5
    (torch.Size([2, 1, 5, 7]), 0.5)
    """

    def __init__(
        self,
        in_channels: int,
        channels: str | Sequence[str] = "lab",
        space: str | None = None,
        kernel_size: int = 3,
        bounded: bool = True,
        scales: Mapping[str, float] | None = None,
        zero_init: bool = True,
        act: ActSpec = None,
        gate: str | None = None,
    ) -> None:
        super().__init__()
        if gate is not None and gate not in GATES:
            raise ValueError(f"gate must be None or one of {list(GATES)}, got {gate!r}")
        names, space = _resolve_channels(channels, space)
        self.channels: tuple[str, ...] = names
        self.space: str = space
        self.bounded = bool(bounded)
        self.in_channels = in_channels
        self.gate: str | None = gate
        self.out = _OutConv(in_channels, len(names), kernel_size, act, zero_init)
        self.gate_out = _OutConv(in_channels, 1, kernel_size, act, zero_init) if gate is not None else None
        self.register_buffer(
            "scales", torch.tensor(_scale_vector(names, space, scales)), persistent=False
        )

    def extra_repr(self) -> str:
        gate = f", gate={self.gate!r}" if self.gate is not None else ""
        return f"channels={self.channels}, space={self.space!r}, bounded={self.bounded}{gate}"

    def _gate(self, logit: Tensor, mask: Tensor | None) -> Tensor:
        """``(B, 1, h, w)`` gate: the mask for samples that have one (not all zeros), else ``p``."""
        p = torch.sigmoid(logit)
        if mask is None:
            return p
        m = mask.to(p.dtype)
        if m.shape[-2:] != p.shape[-2:]:
            m = F.interpolate(m, size=p.shape[-2:], mode="bilinear", align_corners=False).clamp(0.0, 1.0)
        given = mask.flatten(1).amax(dim=1) > 0
        return torch.where(given.view(-1, 1, 1, 1), m, p)

    def _fused_out(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """``(raw (B, C, h, w), logit (B, 1, h, w))`` from one convolution over the padded
        features: the two output convolutions' weights concatenated (they stay separate
        parameters, so ungated weights still load). One ``F -> C + 1`` convolution costs
        about as much as ``F -> C`` on CPU; two separate ones cost twice."""
        assert self.gate_out is not None
        conv, gconv = self.out.conv, self.gate_out.conv
        if features.dim() != 4 or features.shape[1] != conv.in_channels:
            raise ValueError(f"expected features (B, {conv.in_channels}, h, w), got {tuple(features.shape)}")
        x = _same_pad(self.out.act(features), self.out.pad)
        y = F.conv2d(x, torch.cat([conv.weight, gconv.weight]), torch.cat([conv.bias, gconv.bias]))
        return y[:, :-1], y[:, -1:]

    def forward(self, features: Tensor, image: Tensor, mask: Tensor | None = None) -> ModelOutput:
        if self.gate_out is None:
            raw, logit = self.out(features), None
        else:
            raw, logit = self._fused_out(features)
        _check_image(image, features)
        # colour conversions need at least float32 (L spans 0..100): leave autocast here
        dtype = torch.promote_types(torch.promote_types(raw.dtype, image.dtype), torch.float32)
        if logit is None:
            with torch.autocast(device_type=raw.device.type, enabled=False):
                out, masks = retouch(
                    image.to(dtype), raw.to(dtype), self.channels, self.space, self.scales, self.bounded
                )
            return ModelOutput(out, masks)
        if mask is not None and (mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] != image.shape[0]):
            raise ValueError(f"expected mask ({image.shape[0]}, 1, H, W), got {tuple(mask.shape)}")
        with torch.autocast(device_type=raw.device.type, enabled=False):
            logit = logit.to(dtype)
            g = self._gate(logit, mask)
            values = raw_to_operator_values(raw.to(dtype), self.channels, self.space, self.scales, self.bounded)
            masks = OperatorMasks(gate_values(values, self.channels, g), self.channels, self.space)
            x = image.to(dtype)
            out = masks.apply(x)
            if mask is not None:
                # outside a given mask the masks are the identity: return the input bit-exactly
                # (the colour round trip is not); no gradient is lost, g = 0 has none to give
                on = (g != 0).to(dtype)
                if on.shape[-2:] != x.shape[-2:]:
                    on = F.interpolate(on, size=x.shape[-2:], mode="bilinear", align_corners=False)
                out = torch.where(on == 0, x, out)
        return ModelOutput(out, masks, localisation_logit=logit)


class RGBHead(nn.Module):
    """Features -> RGB image (the paper's baseline output).

    Args:
        in_channels: feature channels ``F``.
        mode: ``"direct"`` (the paper's baseline: ``(tanh(raw) + 1) / 2``) or
            ``"residual"`` (``clamp(image + tanh(raw), 0, 1)``, zero-initialised, starts
            at identity).
        kernel_size: size of the output convolution (odd).
        act: activation applied to the features first.

    Forward:
        ``features (B, F, h, w)``, ``image (B, 3, H, W)`` in ``[0, 1]`` -> :class:`ModelOutput`
        with ``image (B, 3, H, W)`` in ``[0, 1]`` (the prediction is resized bilinearly to
        ``H, W`` when ``h, w`` differ).

    >>> head = RGBHead(8, mode="residual")
    >>> img = torch.rand(1, 3, 6, 6)
    >>> bool(torch.equal(head(torch.randn(1, 8, 6, 6), img).image, img))
    True
    """

    def __init__(
        self,
        in_channels: int,
        mode: Literal["direct", "residual"] = "direct",
        kernel_size: int = 3,
        act: ActSpec = None,
    ) -> None:
        super().__init__()
        if mode not in ("direct", "residual"):
            raise ValueError(f"mode must be 'direct' or 'residual', got {mode!r}")
        self.mode = mode
        self.in_channels = in_channels
        self.out = _OutConv(in_channels, 3, kernel_size, act, zero_init=mode == "residual")

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"

    def forward(self, features: Tensor, image: Tensor, mask: Tensor | None = None) -> ModelOutput:
        raw = self.out(features)
        _check_image(image, features)
        if raw.shape[-2:] != image.shape[-2:]:
            raw = F.interpolate(raw, size=image.shape[-2:], mode="bilinear", align_corners=False)
        if self.mode == "direct":
            return ModelOutput((torch.tanh(raw) + 1.0) * 0.5)
        return ModelOutput((image + torch.tanh(raw)).clamp(0.0, 1.0))


#: heads by name: ``builder(in_channels, **kwargs) -> nn.Module``; an operator channel set
#: (``lab``, ``lab_add``, ``hls``, ``hls_add``) -> :class:`OperatorMaskHead`, ``rgb`` /
#: ``rgb_residual`` -> :class:`RGBHead` (``mode="direct"`` / ``"residual"``)
HEADS: Registry[Callable[..., nn.Module]] = Registry("head")
for _channels in CHANNEL_SETS:
    HEADS.register(_channels, partial(OperatorMaskHead, channels=_channels))
HEADS.register("rgb", partial(RGBHead, mode="direct"))
HEADS.register("rgb_residual", partial(RGBHead, mode="residual"))

#: the built-in head names, in registration order
HEAD_NAMES: tuple[str, ...] = tuple(HEADS)


def create_head(head: str, in_channels: int, **kwargs: Any) -> nn.Module:
    """Build the head registered as ``head`` (:data:`HEADS`) for ``in_channels`` features.

    Raises:
        UnknownNameError: unknown ``head`` (a ``ValueError``; the message lists the heads).

    >>> create_head("hls_add", 16).channels
    ('h_add', 'l_add', 's_add')
    >>> create_head("rgb", 16).mode
    'direct'
    """
    return HEADS.create(head, in_channels, **kwargs)
