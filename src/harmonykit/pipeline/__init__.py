"""The one full-resolution path (issue 28): :func:`harmonize_images`.

Below :mod:`harmonykit.evaluation` and :mod:`harmonykit.inference` (it imports runners,
operators and region maps only): the evaluator scores what :class:`~harmonykit.inference.Harmonizer`
(the command line, the web editor, video) produces. The typed values it takes are
:class:`harmonykit.limits.WorkSize` and :class:`harmonykit.maskuse.MaskUseDecision`.
"""

from harmonykit.pipeline.core import Rendered, harmonize_images, mask_decision

__all__ = ["Rendered", "harmonize_images", "mask_decision"]
