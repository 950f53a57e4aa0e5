"""The decoded-clip cache: same items as decoding on the fly, failed clips recorded, DataLoader workers."""
import json
import shutil

import pytest
import torch

from vidlab.data import CachedClipDataset, VideoClipDataset, build_cache, build_transforms
from vidlab.data.cache import cached
from vidlab.errors import DatasetError


def test_cache_matches_decoding(smoke_data, tmp_path):
    ds = VideoClipDataset(smoke_data, "val", num_frames=4)
    out = build_cache(ds, tmp_path / "c", size=64, num_clips=2)
    meta = json.loads((out / "cache.json").read_text())
    assert meta["shape"] == [len(ds), 2, 4, 64, 64, 3] and meta["sampling"]["method"] == "segment"
    assert meta["failed"] == [] and meta["classes"] == ds.classes
    cds = CachedClipDataset(out)
    assert len(cds) == len(ds) and cds.classes == ds.classes
    two = VideoClipDataset(smoke_data, "val", num_frames=4, num_clips=2)
    all_views = CachedClipDataset(out, all_views=True)
    for i in (0, 5):
        a, b = all_views[i], two[i]  # the stored views are the dataset's test views, exactly
        assert a[1:] == b[1:] and a[0].shape == (2, 3, 4, 64, 64) and torch.equal(a[0], b[0])
        assert torch.equal(cds[i][0], b[0][0])
    tf = build_transforms(True, img_size=32)
    train = CachedClipDataset(out, transform=tf, train=True, seed=1)
    x0 = train[3][0]
    assert x0.shape == (3, 4, 32, 32) and torch.equal(x0, train[3][0])
    train.set_epoch(1)
    assert not torch.equal(x0, train[3][0])
    loader = torch.utils.data.DataLoader(train, batch_size=5, num_workers=2)
    assert sum(len(b[0]) for b in loader) == len(ds)


def test_cache_records_failed_clips_and_reuse(smoke_data, tmp_path):
    root = tmp_path / "d"
    shutil.copytree(smoke_data, root, ignore=shutil.ignore_patterns("train", "ground_truth"))
    (root / "val" / "shrink" / "shrink_val_0000.mp4").write_bytes(b"not a video")
    ds = VideoClipDataset(root, "val", num_frames=4, transform=build_transforms(False, img_size=32))
    c = cached(ds, root / ".cache")
    assert len(c) == len(ds) - 1 and c.num_skipped == 1 and "shrink_val_0000" in c.skipped[0]["path"]
    assert c[0][0].shape == (3, 4, 32, 32)
    stamp = (c.dir / "clips.npy").stat().st_mtime_ns
    assert cached(ds, root / ".cache").dir == c.dir and (c.dir / "clips.npy").stat().st_mtime_ns == stamp
    with pytest.raises(DatasetError, match="no cache.json"):
        CachedClipDataset(tmp_path / "nothing")
