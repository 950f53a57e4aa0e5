"""Video data for vidlab: decoding, sampling, transforms, Kinetics-layout datasets, the synthetic dataset, a cache.

    from vidlab.data import make_synthetic, VideoClipDataset, build_transforms
    root = make_synthetic("data/synthetic", preset="smoke")
    ds = VideoClipDataset(root, "train", num_frames=8, transform=build_transforms(train=True, img_size=64))
    clip, label, index = ds[0]          # (3, 8, 64, 64) float, int, int
"""
from .io import VideoReader, available_backends, probe, write_video
from .sampling import dense_indices, is_padded, sample_indices, segment_indices, view_indices
from .transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms, denormalize
from .synthetic import CLASSES as SYNTHETIC_CLASSES, REVERSED_PAIRS, load_ground_truth, make_synthetic, synthetic_config
from .cache import CachedClipDataset, build_cache
from .kinetics import (VideoClipDataset, read_classes, read_id_list, read_kinetics_csv, read_list_file,
                       resolve_class_list)
from .subset import make_subset

__all__ = [
    "VideoReader", "available_backends", "probe", "write_video",
    "segment_indices", "dense_indices", "view_indices", "sample_indices", "is_padded",
    "IMAGENET_MEAN", "IMAGENET_STD", "build_transforms", "denormalize",
    "make_synthetic", "load_ground_truth", "synthetic_config", "SYNTHETIC_CLASSES", "REVERSED_PAIRS",
    "VideoClipDataset", "make_subset", "read_classes", "read_kinetics_csv", "read_list_file", "read_id_list",
    "resolve_class_list", "build_cache", "CachedClipDataset",
]
