"""PatchGAN discriminators (pix2pix ``NLayerDiscriminator``), used by OMGAN fine-tuning.

Discriminators are not harmonization models (no head, no ``harmonize``), so they have
their own registry, :data:`DISCRIMINATORS`: :func:`create_discriminator` ``(name, **kwargs)``,
:func:`list_discriminators`, ``@register_discriminator(name)`` (``DISCRIMINATORS.register``).
As with :func:`~harmonykit.models.create_model`, the built module carries
``config = {"name", "kwargs"}`` (set by :func:`create_discriminator` only) so a trainer can
rebuild it from a checkpoint.

>>> list_discriminators()
['patch_gan', 'patch_gan_tiny']

=================  ===  ========  =======  ================  ========
name               ndf  n_layers  params   receptive field   min size
=================  ===  ========  =======  ================  ========
``patch_gan``      64   3         2.77 M   70 x 70           24 px
``patch_gan_tiny`` 8    2         0.01 M   34 x 34           12 px
=================  ===  ========  =======  ================  ========

Layout for ``n_layers = n``: ``conv 4x4/2 (ndf) -> LReLU``, then ``n - 1`` times
``conv 4x4/2 -> norm -> LReLU`` doubling the width (capped at ``8 ndf``), then
``conv 4x4/1 -> norm -> LReLU`` and ``conv 4x4/1 -> 1`` channel. The output is the raw
score map ``C(x)`` ``(B, 1, h, w)`` (no sigmoid: the relativistic loss needs logits); at
256 x 256 input ``patch_gan`` gives a 30 x 30 map, each value seeing a 70 x 70 patch.
Norm: instance norm without affine parameters (the paper's), LeakyReLU slope 0.2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch  # noqa: F401  (doctests)
from torch import Tensor, nn

from harmonykit.models.layers import ActSpec, NormSpec, get_act_layer, get_norm_layer
from harmonykit.registry import Registry

__all__ = [
    "PatchDiscriminator",
    "DISCRIMINATORS",
    "register_discriminator",
    "create_discriminator",
    "list_discriminators",
]

#: discriminators: name -> ``builder(**kwargs) -> nn.Module``
DISCRIMINATORS: Registry[Callable[..., nn.Module]] = Registry("discriminator")

#: ``@register_discriminator(name=None)``: register a builder in :data:`DISCRIMINATORS`
register_discriminator = DISCRIMINATORS.register
#: sorted names of :data:`DISCRIMINATORS`
list_discriminators = DISCRIMINATORS.names


def create_discriminator(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered discriminator; records ``config = {"name", "kwargs"}`` on it.

    Raises:
        ConfigError: unknown name (:class:`~harmonykit.registry.UnknownNameError`).

    >>> d = create_discriminator("patch_gan_tiny")
    >>> d(torch.rand(1, 3, 32, 32)).shape
    torch.Size([1, 1, 6, 6])
    """
    model = DISCRIMINATORS.create(name, **kwargs)
    model.config = {"name": name, "kwargs": dict(kwargs)}
    return model


class PatchDiscriminator(nn.Module):
    """PatchGAN: image -> map of realism scores, one per receptive-field patch.

    Args:
        in_channels: input channels (3 for an RGB image; 6 for a conditional
            ``[composite, image]`` pair).
        ndf: width of the first layer (paper 64).
        n_layers: number of stride-2 convolutions (paper 3: 70 x 70 patches).
        max_mult: widths are capped at ``max_mult * ndf``.
        norm: normalization (paper ``"in"``; see :func:`~harmonykit.models.layers.get_norm_layer`).
        act: activation (paper ``"lrelu"``, slope 0.2).

    Forward:
        ``x (B, in_channels, H, W)``, images in ``[0, 1]`` (any range works; be
        consistent), ``H, W >= min_size`` -> raw scores ``(B, 1, h, w)``.

    >>> d = PatchDiscriminator(ndf=8, n_layers=3)
    >>> d.receptive_field, d.min_size, d.output_size(256, 256)
    (70, 24, (30, 30))
    """

    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        max_mult: int = 8,
        norm: NormSpec = "in",
        act: ActSpec = "lrelu",
    ) -> None:
        super().__init__()
        for name, v in (
            ("in_channels", in_channels),
            ("ndf", ndf),
            ("n_layers", n_layers),
            ("max_mult", max_mult),
        ):
            if not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        self.in_channels = in_channels
        self.n_layers = n_layers
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1),
            get_act_layer(act),
        ]
        width = ndf
        for n in range(1, n_layers + 1):
            stride = 2 if n < n_layers else 1
            nxt = ndf * min(2**n, max_mult)
            layers += [
                nn.Conv2d(width, nxt, 4, stride=stride, padding=1),
                get_norm_layer(norm, nxt),
                get_act_layer(act),
            ]
            width = nxt
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)
        self._strides = [2] * n_layers + [1, 1]

    @property
    def receptive_field(self) -> int:
        """Side of the input patch that one output value sees."""
        r = 1
        for s in reversed(self._strides):
            r = (r - 1) * s + 4
        return r

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Spatial size of the score map for an ``height x width`` input (may be <= 0)."""

        def one(n: int) -> int:
            for s in self._strides:
                n = (n + 2 - 4) // s + 1
            return n

        return one(height), one(width)

    @property
    def min_size(self) -> int:
        """Smallest input side that gives a non-empty score map."""
        n = 1
        while self.output_size(n, n)[0] < 1:
            n += 1
        return n

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if min(self.output_size(x.shape[-2], x.shape[-1])) < 1:
            raise ValueError(
                f"input {tuple(x.shape[-2:])} is too small for a {self.n_layers}-layer PatchGAN "
                f"(needs H, W >= {self.min_size})"
            )
        return self.model(x)


@DISCRIMINATORS.register("patch_gan")
def patch_gan(**kwargs: Any) -> PatchDiscriminator:
    """The paper's discriminator: 3 layers, ndf 64, instance norm, LeakyReLU 0.2 (70 x 70)."""
    return PatchDiscriminator(**{"ndf": 64, "n_layers": 3, **kwargs})


@DISCRIMINATORS.register("patch_gan_tiny")
def patch_gan_tiny(**kwargs: Any) -> PatchDiscriminator:
    """Tiny PatchGAN for tests: 2 layers, ndf 8."""
    return PatchDiscriminator(**{"ndf": 8, "n_layers": 2, **kwargs})
