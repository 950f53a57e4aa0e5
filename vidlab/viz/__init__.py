"""vidlab.viz: capture maps from models, draw them over clips, explore them with widgets."""
from .capture import capture, record, wants, is_capturing, group_by_kind, filter_maps

__all__ = ["capture", "record", "wants", "is_capturing", "group_by_kind", "filter_maps"]
