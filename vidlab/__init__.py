"""vidlab: efficient video recognition, built block by block.

    import vidlab
    model = vidlab.create_model("video_focalnet_nano", num_classes=10)   # its recipe's input: 8x32x32
    with vidlab.viz.capture(model) as maps:
        logits = model(clip)          # clip: (B, 3, T, H, W)
"""
from .errors import VidlabError
from .models import create_model, list_models, model_info

__version__ = "0.1.0"

__all__ = ["create_model", "list_models", "model_info", "VidlabError", "__version__"]


def __getattr__(name):  # lazy sub-packages: vidlab.viz, vidlab.data, vidlab.profile, vidlab.train
    import importlib
    if name in {"viz", "data", "profile", "train", "models", "utils", "errors"}:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'vidlab' has no attribute {name!r}")
