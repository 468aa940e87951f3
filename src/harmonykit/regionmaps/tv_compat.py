"""Minimal stand-ins for the four torchvision functions that ``segment-anything`` imports.

``segment_anything`` imports ``torchvision.ops.boxes.batched_nms`` / ``box_area`` (automatic
mask generator) and ``torchvision.transforms.functional.resize`` / ``to_pil_image``
(``ResizeLongestSide.apply_image``) but does not declare torchvision as a dependency. A
torchvision wheel must match the torch build exactly; where none is importable (e.g. the
CPU build of torch 2.13 that harmonykit's CI uses), :func:`install` registers these pure
torch/PIL implementations under the ``torchvision`` module names so that the real
``SamAutomaticMaskGenerator`` runs unchanged. It is used only when ``import torchvision``
fails; a working torchvision is always preferred.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import torch
from PIL import Image
from torch import Tensor

__all__ = ["box_area", "nms", "batched_nms", "resize", "to_pil_image", "install"]


def box_area(boxes: Tensor) -> Tensor:
    """Areas of ``(N, 4)`` boxes in ``(x0, y0, x1, y1)`` form."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _iou_one_to_many(box: Tensor, boxes: Tensor) -> Tensor:
    lt = torch.maximum(box[:2], boxes[:, :2])
    rb = torch.minimum(box[2:], boxes[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    union = box_area(box[None])[0] + box_area(boxes) - inter
    return inter / union.clamp(min=torch.finfo(boxes.dtype).tiny if boxes.is_floating_point() else 1)


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression (same contract as ``torchvision.ops.nms``).

    Returns the indices of kept boxes, sorted by decreasing score.

    >>> b = torch.tensor([[0., 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]])
    >>> nms(b, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist()
    [0, 2]
    """
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    boxes = boxes.float()
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=boxes.device)
    keep = []
    sorted_boxes = boxes[order]
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(int(order[i]))
        if i + 1 < len(order):
            iou = _iou_one_to_many(sorted_boxes[i], sorted_boxes[i + 1 :])
            suppressed[i + 1 :] |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.int64, device=boxes.device)


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """NMS applied independently per category ``idxs`` (coordinate-offset trick)."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def to_pil_image(pic: np.ndarray | Tensor) -> Image.Image:
    """uint8 ``(H, W, 3)`` array (or ``(3, H, W)`` tensor) to a PIL image."""
    if isinstance(pic, Tensor):
        pic = pic.detach().cpu()
        if pic.is_floating_point():
            pic = (pic * 255).round().clamp(0, 255)
        pic = pic.to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(np.ascontiguousarray(pic))


def resize(img: Image.Image, size: tuple[int, int] | list[int]) -> Image.Image:
    """Resize a PIL image to ``size = (h, w)`` with bilinear interpolation (torchvision's default)."""
    h, w = int(size[0]), int(size[1])
    return img.resize((w, h), Image.BILINEAR)


def install() -> None:
    """Register the stand-ins as ``torchvision.ops.boxes`` and ``torchvision.transforms.functional``."""
    if "torchvision" in sys.modules and not getattr(sys.modules["torchvision"], "_harmonykit_shim", False):
        return
    tv = types.ModuleType("torchvision")
    tv._harmonykit_shim = True  # type: ignore[attr-defined]
    ops = types.ModuleType("torchvision.ops")
    boxes = types.ModuleType("torchvision.ops.boxes")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    for name in ("box_area", "nms", "batched_nms"):
        setattr(boxes, name, globals()[name])
        setattr(ops, name, globals()[name])
    functional.resize = resize  # type: ignore[attr-defined]
    functional.to_pil_image = to_pil_image  # type: ignore[attr-defined]
    ops.boxes = boxes  # type: ignore[attr-defined]
    transforms.functional = functional  # type: ignore[attr-defined]
    tv.ops, tv.transforms = ops, transforms  # type: ignore[attr-defined]
    sys.modules.update(
        {
            "torchvision": tv,
            "torchvision.ops": ops,
            "torchvision.ops.boxes": boxes,
            "torchvision.transforms": transforms,
            "torchvision.transforms.functional": functional,
        }
    )
