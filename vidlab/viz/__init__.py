"""vidlab.viz: capture maps from models, draw them over clips, explore them with widgets, score them; draw a
model's block diagram with the shapes of a real forward pass (`diagram`)."""
from .capture import capture, filter_maps, group_by_kind, is_capturing, record, wants
from .diagram import diagram, diagram_graph   # the function shadows its module's name: vidlab.viz.diagram(model, shape)
from .scores import centre_prior, energy_in_mask, pointing_game, points_in_mask, random_map


def __getattr__(name):  # plots/widgets/attribution import matplotlib/ipywidgets/captum: load on first use
    import importlib
    if name in {"plots", "widgets", "attribution", "scores"}:
        return importlib.import_module(f"{__name__}.{name}")
    for mod in ("plots", "widgets"):
        m = importlib.import_module(f"{__name__}.{mod}")
        if hasattr(m, name):
            return getattr(m, name)
    raise AttributeError(f"module 'vidlab.viz' has no attribute {name!r}")


__all__ = ["diagram", "diagram_graph", "capture", "record", "wants", "is_capturing", "group_by_kind", "filter_maps", "pointing_game",
           "energy_in_mask", "points_in_mask", "random_map", "centre_prior", "plots", "widgets", "attribution"]
