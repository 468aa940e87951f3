"""The best / worst figure of a report: thumbnails kept while streaming."""

from __future__ import annotations

import heapq

import numpy as np

from harmonykit.evaluation import metrics as M
from harmonykit.evaluation.pairs import Prepared
from harmonykit.evaluation.report import FigureRow

__all__ = ["thumbnail", "Extremes"]


def thumbnail(img: np.ndarray, side: int = 128) -> np.ndarray:
    """``img`` scaled (bilinear) so that its longer side is at most ``side``.

    >>> thumbnail(np.zeros((256, 64, 3), np.uint8)).shape
    (128, 32, 3)
    """
    from PIL import Image

    h, w = img.shape[:2]
    s = side / max(h, w)
    if s >= 1:
        return img
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BILINEAR))


class Extremes:
    """Keeps thumbnails of the ``k`` lowest- and highest-MSE images while streaming."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.best: list[tuple[float, int, FigureRow]] = []  # max-heap via negated mse
        self.worst: list[tuple[float, int, FigureRow]] = []  # min-heap
        self.count = 0

    @staticmethod
    def _row(title: str, pair: Prepared, out: np.ndarray) -> FigureRow:
        m = (M.binarize_mask(pair.mask).astype(np.uint8) * 255)
        return FigureRow(title, thumbnail(pair.composite), thumbnail(out), thumbnail(pair.real), thumbnail(m))

    def add(self, mse: float, pair: Prepared, out: np.ndarray) -> None:
        """Offer the output ``out`` of ``pair``, whose MSE is ``mse``."""
        if self.k <= 0:
            return
        self.count += 1
        row = None
        for heap, key in ((self.best, -mse), (self.worst, mse)):
            if len(heap) < self.k or key > heap[0][0]:
                row = row or self._row(f"{pair.id}\nMSE {mse:.2f}", pair, out)
                entry = (key, self.count, row)
                if len(heap) < self.k:
                    heapq.heappush(heap, entry)
                else:
                    heapq.heapreplace(heap, entry)

    def rows(self) -> list[FigureRow]:
        """The worst images (highest MSE first), then the best ones not already shown."""
        worst = sorted(self.worst, key=lambda t: -t[0])
        taken = {n for _, n, _ in worst}
        best = [t for t in sorted(self.best, key=lambda t: -t[0]) if t[1] not in taken]
        rows = []
        for i, (_, _, r) in enumerate(worst):
            rows.append(FigureRow(f"worst {i + 1}: {r.title}", r.composite, r.output, r.real, r.mask))
        for i, (_, _, r) in enumerate(best):
            rows.append(FigureRow(f"best {i + 1}: {r.title}", r.composite, r.output, r.real, r.mask))
        return rows
