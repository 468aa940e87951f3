"""The built-in models: every architecture preset, registered in :data:`MODELS` at import.

:mod:`harmonykit.models` imports this module, so the names below exist as soon as the
package is imported (nothing is imported lazily). A preset is the architecture's builder
with some keyword arguments fixed; the keyword arguments given to
:func:`~harmonykit.models.create_model` override them.

* :func:`~harmonykit.models.om.build_unet_model` (operator masks / RGB baseline):
  ``om_unet`` (depth 8, ngf 64, ``lab`` head), ``om_unet_small`` (depth 6, ngf 16),
  ``om_unet_tiny`` (depth 4, ngf 8), and ``rgb_unet``, ``rgb_unet_small``,
  ``rgb_unet_tiny`` (the same sizes, ``rgb`` head);
* :func:`~harmonykit.models.srin.build_srin_model`: ``srin_unet`` (its defaults),
  ``srin_unet_tiny`` (ngf 8), ``srin_om`` (``lab`` head);
* :func:`~harmonykit.models.effunet.build_effunet_model` (operator masks on an
  ImageNet-pretrained EfficientNet-Lite0): ``om_effunet`` and ``om_effunet_tiny`` (tests).

>>> from harmonykit.models import list_models
>>> list_models("rgb_*")
['rgb_unet', 'rgb_unet_small', 'rgb_unet_tiny']
"""

from __future__ import annotations

from functools import partial

from harmonykit.models.effunet import build_effunet_model
from harmonykit.models.om import PAPER, SMALL, TINY, build_unet_model
from harmonykit.models.registry import MODELS
from harmonykit.models.srin import build_srin_model

__all__: list[str] = []

# operator-mask U-Nets (Sg-MMH) and the paper's RGB baseline (harmonykit.models.om)
MODELS.register("om_unet", partial(build_unet_model, **PAPER, head="lab"))
MODELS.register("om_unet_small", partial(build_unet_model, **SMALL, head="lab"))
MODELS.register("om_unet_tiny", partial(build_unet_model, **TINY, head="lab"))
MODELS.register("rgb_unet", partial(build_unet_model, **PAPER, head="rgb"))
MODELS.register("rgb_unet_small", partial(build_unet_model, **SMALL, head="rgb"))
MODELS.register("rgb_unet_tiny", partial(build_unet_model, **TINY, head="rgb"))

# SRIN U-Nets (harmonykit.models.srin)
MODELS.register("srin_unet", build_srin_model)
MODELS.register("srin_unet_tiny", partial(build_srin_model, ngf=8))
MODELS.register("srin_om", partial(build_srin_model, head="lab"))

# operator masks on an ImageNet-pretrained EfficientNet-Lite0 encoder (harmonykit.models.effunet)
MODELS.register("om_effunet", partial(build_effunet_model, encoder="lite0", head="lab"))
MODELS.register("om_effunet_tiny", partial(build_effunet_model, encoder="tiny", decoder=(16, 12, 8, 8), head="lab"))
