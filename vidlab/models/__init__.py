"""vidlab.models: the registry and the five architectures (plus baselines).

    vidlab.create_model("video_focalnet_nano", num_classes=10)    # a _nano is built at its recipe's input (8x32x32)
"""
from __future__ import annotations

import importlib
import importlib.util

from .registry import (ModelInfo, Recipe, create_model, get_converter, get_recipe, list_models, model_info,
                       register_model)

# Architecture modules, imported on first use of the registry (keeps `import vidlab` fast).
ARCHITECTURES = ("baselines", "video_focalnet", "video_mobileformer", "dualformer", "ila", "sifa")
_imported = False


def _import_architectures() -> None:
    global _imported
    if _imported:
        return
    _imported = True
    for mod in ARCHITECTURES:
        if importlib.util.find_spec(f"{__name__}.{mod}") is not None:
            importlib.import_module(f"{__name__}.{mod}")


__all__ = ["ModelInfo", "Recipe", "get_recipe", "create_model", "list_models", "model_info", "register_model", "get_converter",
           "ARCHITECTURES"]
