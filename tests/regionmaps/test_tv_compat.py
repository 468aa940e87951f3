"""The torchvision stand-ins used by the SAM wrapper when torchvision is absent."""

import numpy as np
import torch

from harmonykit.regionmaps import tv_compat as tv


def _brute_force_nms(boxes, scores, thr):
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    keep = []
    for i in order:
        ok = True
        for k in keep:
            x0, y0 = max(boxes[i][0], boxes[k][0]), max(boxes[i][1], boxes[k][1])
            x1, y1 = min(boxes[i][2], boxes[k][2]), min(boxes[i][3], boxes[k][3])
            inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
            a = (boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1])
            b = (boxes[k][2] - boxes[k][0]) * (boxes[k][3] - boxes[k][1])
            if inter / (a + b - inter) > thr:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


def test_nms_matches_brute_force():
    rng = np.random.default_rng(0)
    xy = rng.random((40, 2)) * 50
    wh = rng.random((40, 2)) * 30 + 1
    boxes = np.concatenate([xy, xy + wh], 1)
    scores = rng.random(40)
    ours = tv.nms(torch.tensor(boxes), torch.tensor(scores), 0.4).tolist()
    assert ours == _brute_force_nms(boxes.tolist(), scores.tolist(), 0.4)


def test_batched_nms_keeps_categories_apart():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10]])
    scores = torch.tensor([0.9, 0.8])
    assert tv.batched_nms(boxes, scores, torch.tensor([0, 0]), 0.5).tolist() == [0]
    assert sorted(tv.batched_nms(boxes, scores, torch.tensor([0, 1]), 0.5).tolist()) == [0, 1]
    assert tv.box_area(boxes).tolist() == [100.0, 100.0]


def test_resize_and_to_pil():
    img = np.zeros((4, 6, 3), np.uint8)
    out = np.asarray(tv.resize(tv.to_pil_image(img), (8, 12)))
    assert out.shape == (8, 12, 3)
