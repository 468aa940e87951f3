"""LPIPS-VGG (Zhang et al. 2018, v0.1), implemented natively (no ``lpips``/``torchvision`` import).

Used by the training loss (paper eq. 4) and by the evaluator's LPIPS metric.

Weights come from two files in their original on-disk formats:

* the ImageNet VGG16 of torchvision, ``vgg16-397923af.pth``: a ``state_dict`` whose
  ``features.N.weight`` / ``features.N.bias`` keys match :func:`vgg16_features` (the
  ``classifier.*`` keys are ignored). Looked up at a configured path, else in the torch hub
  cache ``$TORCH_HOME/hub/checkpoints/`` (``TORCH_HOME`` defaults to ``~/.cache/torch``);
* the LPIPS linear layers ``v0.1/vgg.pth``: keys ``lin{k}.model.1.weight`` of shape
  ``(1, C_k, 1, 1)``. Looked up at a configured path, else inside the installed ``lpips``
  package (``lpips/weights/v0.1/vgg.pth``; the package is located, never imported).

A missing file raises :class:`~harmonykit.errors.MissingDependencyError` that names the
file and every place it was looked for.

The distance: inputs RGB in ``[0, 1]`` are mapped to ``[-1, 1]``, shifted/scaled by the
LPIPS scaling layer, passed through VGG16 up to ``relu5_3``; at ``relu1_2, relu2_2,
relu3_3, relu4_3, relu5_3`` the features are unit-normalised over channels
(``f / (||f||_2 + 1e-10)``), the squared differences are weighted per channel by the linear
layers, averaged over space and summed over the five layers. Result: ``(B,)``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
from torch import Tensor, nn

from harmonykit.errors import HarmonykitError, MissingDependencyError

__all__ = [
    "VGG16_FILENAME",
    "VGG16_CFG",
    "LPIPS_TAPS",
    "LPIPS_CHANNELS",
    "vgg16_features",
    "hub_checkpoint_dir",
    "find_vgg16_weights",
    "find_lpips_weights",
    "lpips_from_features",
    "LPIPS",
]

VGG16_FILENAME = "vgg16-397923af.pth"
#: torchvision's ``cfgs["D"]``: conv widths, ``"M"`` = 2x2 max-pool
VGG16_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
#: indices in ``features`` of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
LPIPS_TAPS: tuple[int, ...] = (3, 8, 15, 22, 29)
LPIPS_CHANNELS: tuple[int, ...] = (64, 128, 256, 512, 512)
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def vgg16_features() -> nn.Sequential:
    """VGG16 ``features`` with torchvision's layer indices (31 modules, ReLUs not in-place).

    >>> sorted(k for k in vgg16_features().state_dict())[:2]
    ['0.bias', '0.weight']
    >>> len(vgg16_features())
    31
    """
    layers: list[nn.Module] = []
    c_in = 3
    for v in VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(c_in, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            c_in = int(v)
    return nn.Sequential(*layers)


def hub_checkpoint_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (``torch.hub.get_dir()``; default ``~/.cache/torch``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _missing(what: str, name: str, looked: list[Path], hint: str) -> MissingDependencyError:
    places = "; ".join(str(p) for p in looked) or "(nowhere: no candidate location)"
    msg = f"{what}: weights file {name} not found; looked in: {places}"
    return MissingDependencyError(msg + (f". {hint}" if hint else ""))


def find_vgg16_weights(path: str | Path | None = None, hint: str = "") -> Path:
    """Locate ``vgg16-397923af.pth``: ``path`` if given, else the torch hub cache."""
    if path is not None:
        p = Path(path).expanduser()
        if p.is_file():
            return p
        raise _missing("LPIPS-VGG", p.name, [p], hint)
    p = hub_checkpoint_dir() / VGG16_FILENAME
    if p.is_file():
        return p
    guide = (
        f"Copy torchvision's {VGG16_FILENAME} there (download.pytorch.org/models/{VGG16_FILENAME}), "
        "set TORCH_HOME, or give its path"
    )
    raise _missing("LPIPS-VGG", VGG16_FILENAME, [p], f"{guide}. {hint}" if hint else guide)


def _lpips_package_dir() -> Path | None:
    try:
        spec = importlib.util.find_spec("lpips")  # locates the package without importing it
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def find_lpips_weights(path: str | Path | None = None, hint: str = "") -> Path:
    """Locate the LPIPS v0.1 VGG linear layers: ``path`` if given, else the ``lpips`` package."""
    if path is not None:
        p = Path(path).expanduser()
        if p.is_file():
            return p
        raise _missing("LPIPS-VGG", p.name, [p], hint)
    pkg = _lpips_package_dir()
    looked = []
    if pkg is not None:
        p = pkg / "weights" / "v0.1" / "vgg.pth"
        if p.is_file():
            return p
        looked.append(p)
    env = os.environ.get("HARMONYKIT_LPIPS_WEIGHTS")
    if env:
        p = Path(env).expanduser()
        if p.is_file():
            return p
        looked.append(p)
    guide = 'Install the lpips package (pip install "harmonykit[lpips]"), set HARMONYKIT_LPIPS_WEIGHTS, or give its path'
    hint = f"{guide}. {hint}" if hint else guide
    if pkg is None:
        looked_txt = [*looked, Path("<the lpips package, which is not installed>/weights/v0.1/vgg.pth")]
        raise _missing("LPIPS-VGG", "v0.1/vgg.pth", looked_txt, hint)
    raise _missing("LPIPS-VGG", "v0.1/vgg.pth", looked, hint)


def _torch_load(path: Path) -> dict[str, Tensor]:
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt / not a torch file
        raise HarmonykitError(f"{path}: cannot read weights ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise HarmonykitError(f"{path}: expected a state_dict, got {type(state).__name__}")
    return state


def lpips_from_features(
    feats0: list[Tensor], feats1: list[Tensor], lin_weights: list[Tensor], eps: float = 1e-10
) -> Tensor:
    """The LPIPS head on precomputed features: per-image distance ``(B,)``.

    Args:
        feats0, feats1: lists of ``(B, C_k, H_k, W_k)`` feature maps.
        lin_weights: list of ``(1, C_k, 1, 1)`` (or ``(C_k,)``) channel weights.

    >>> f0 = [torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)]
    >>> f1 = [torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)]
    >>> lpips_from_features(f0, f1, [torch.tensor([1.0, 2.0])], eps=0.0)  # 0.16*1 + 0.64*2
    tensor([1.4400])
    """
    total = None
    for a, b, w in zip(feats0, feats1, lin_weights, strict=True):
        na = a / (a.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)
        nb = b / (b.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)
        d = (na - nb).pow(2)
        layer = (d * w.reshape(1, -1, 1, 1).to(d.dtype)).sum(dim=1).mean(dim=(-2, -1))
        total = layer if total is None else total + layer
    assert total is not None
    return total


class LPIPS(nn.Module):
    """LPIPS-VGG v0.1 distance between two RGB batches in ``[0, 1]``; returns ``(B,)``.

    Parameters are frozen (``requires_grad=False``); gradients flow to the inputs, so it
    serves as a loss. Build with :meth:`from_files` (pretrained) or construct directly
    (random weights, for tests).
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = vgg16_features()[: LPIPS_TAPS[-1] + 1]
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in LPIPS_CHANNELS)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> LPIPS:  # always eval: no dropout/bn, but keep API
        return super().train(False)

    @classmethod
    def from_files(
        cls, vgg_weights: str | Path | None = None, lin_weights: str | Path | None = None, hint: str = ""
    ) -> LPIPS:
        """Load pretrained weights (see module docstring for the look-up rules)."""
        vgg_path = find_vgg16_weights(vgg_weights, hint)
        lin_path = find_lpips_weights(lin_weights, hint)
        model = cls()
        model.load_vgg16(vgg_path)
        model.load_lins(lin_path)
        return model

    def load_vgg16(self, path: str | Path) -> None:
        """Load a torchvision VGG16 ``state_dict`` (``features.N.*`` keys)."""
        path = Path(path)
        state = _torch_load(path)
        feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        want = self.features.state_dict()
        missing = [f"features.{k}" for k in want if k not in feats]
        if missing:
            raise HarmonykitError(f"{path}: not a torchvision VGG16 checkpoint (missing keys {missing[:4]})")
        for k, v in want.items():
            if feats[k].shape != v.shape:
                raise HarmonykitError(
                    f"{path}: features.{k} has shape {tuple(feats[k].shape)}, expected {tuple(v.shape)}"
                )
        self.features.load_state_dict({k: feats[k].float() for k in want})

    def load_lins(self, path: str | Path) -> None:
        """Load LPIPS linear layers (``lin{k}.model.1.weight`` keys)."""
        path = Path(path)
        state = _torch_load(path)
        for k, (lin, c) in enumerate(zip(self.lins, LPIPS_CHANNELS)):
            key = f"lin{k}.model.1.weight"
            if key not in state:
                raise HarmonykitError(f"{path}: not an LPIPS VGG linear-layer file (missing key {key!r})")
            w = state[key]
            if tuple(w.shape) != (1, c, 1, 1):
                raise HarmonykitError(f"{path}: {key} has shape {tuple(w.shape)}, expected (1, {c}, 1, 1)")
            lin.weight.data.copy_(w.float())

    def layer_features(self, x: Tensor) -> list[Tensor]:
        """Features at relu1_2 .. relu5_3 of the scaled input (``x`` in ``[0, 1]``)."""
        h = ((2.0 * x - 1.0) - self.shift.to(x.dtype)) / self.scale.to(x.dtype)
        out = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in LPIPS_TAPS:
                out.append(h)
        return out

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Per-image LPIPS ``(B,)`` between ``x`` and ``y``, both ``(B, 3, H, W)`` in ``[0, 1]``."""
        if x.shape != y.shape or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected two (B, 3, H, W) tensors of the same shape, got {tuple(x.shape)}, {tuple(y.shape)}")
        fx = self.layer_features(x)
        fy = self.layer_features(y)
        return lpips_from_features(fx, fy, [lin.weight for lin in self.lins])
