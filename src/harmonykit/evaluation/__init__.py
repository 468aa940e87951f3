"""Evaluation: per-image metrics, the benchmark evaluator and its reports.

* :mod:`harmonykit.evaluation.metrics` - MSE, fMSE, PSNR, fPSNR, SSIM, fSSIM, OM IoU.
* :mod:`harmonykit.evaluation.evaluator` - :func:`evaluate` a model or a baseline on a
  benchmark (harmonykit layout, triptych or iHarmony4).
* :mod:`harmonykit.evaluation.report` - ``metrics.json``, ``per_image.csv``, ``table.md``,
  the best/worst figure, and :func:`compare_reports`.

Submodules are imported on demand (``from harmonykit.evaluation.evaluator import evaluate``)
so that importing metrics does not import torch models.
"""
