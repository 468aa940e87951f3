"""Evaluation: per-image metrics, the benchmark evaluator and its reports.

* :mod:`harmonykit.evaluation.metrics` - MSE, fMSE, PSNR, fPSNR, SSIM, fSSIM, OM IoU.
* :mod:`harmonykit.evaluation.evaluator` - :func:`evaluate` a model or a baseline on a
  benchmark (harmonykit layout, triptych or iHarmony4): the loop, over
  :mod:`~harmonykit.evaluation.options` (:class:`EvalOptions`),
  :mod:`~harmonykit.evaluation.method` (the runner from :func:`harmonykit.runners.resolve`,
  its label, the mask setting), :mod:`~harmonykit.evaluation.pairs` (``Prepared | Failure``
  per benchmark item), :mod:`~harmonykit.evaluation.scoring` (run and score a batch) and
  :mod:`~harmonykit.evaluation.figure` (the best / worst thumbnails).
* :mod:`harmonykit.evaluation.report` - ``metrics.json``, ``per_image.csv``, ``table.md``,
  the best/worst figure, and :func:`compare_reports`.
* :mod:`harmonykit.evaluation.reference_free` - real composites without ground truth.

Submodules are imported on demand (``from harmonykit.evaluation.evaluator import evaluate``)
so that importing metrics does not import torch models.
"""
