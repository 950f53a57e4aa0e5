import sys
import types

import pytest
import torch
from torch import nn

import vidlab
from vidlab.errors import CheckpointError, ConfigError
from vidlab.models import ModelInfo, create_model, list_models, model_info, register_model
from vidlab.models.official import check_and_load, load_checkpoint, load_pretrained


class _Tiny(nn.Module):
    def __init__(self, num_classes=400, num_frames=8, img_size=224, width=4):
        super().__init__()
        self.stem = nn.Conv3d(3, width, 1)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(self.stem(x).mean((2, 3, 4)))


def _official_filter(sd, model):
    """Test converter: the 'official' layout prefixes everything with backbone."""
    return {k.replace("backbone.", ""): v for k, v in sd.items()}


@register_model(info=ModelInfo(arch="toyarch", paper="Test 2026", params_reported=1.0, top1={"K400": 1.0}),
                converter=_official_filter)
def toyarch_nano(num_classes=400, num_frames=8, img_size=224, **kw):
    return _Tiny(num_classes, num_frames, img_size, **kw)


def test_create_list_info():
    m = create_model("toyarch_nano", num_classes=5, width=3)
    assert m.head.out_features == 5 and m.stem.out_channels == 3 and m.vidlab_name == "toyarch_nano"
    assert "toyarch_nano" in list_models("toyarch_*") and list_models(arch="toyarch") == ["toyarch_nano"]
    info = model_info("toyarch_nano")
    assert info["teaching"] is True and info["paper"] == "Test 2026" and info["name"] == "toyarch_nano"
    assert vidlab.model_info("toyarch_nano")["top1"] == {"K400": 1.0}


def test_unknown_model_names_the_candidates():
    with pytest.raises(ConfigError, match="unknown model 'toyarch_huge'.*toyarch_nano"):
        create_model("toyarch_huge")


def test_vidlab_checkpoint_round_trip(tmp_path):
    m = create_model("toyarch_nano", num_classes=5)
    path = tmp_path / "ck.pt"
    torch.save({"model": m.state_dict(), "vidlab_version": vidlab.__version__, "epoch": 3}, path)
    m2 = create_model("toyarch_nano", num_classes=5, pretrained=path)
    x = torch.randn(1, 3, 2, 4, 4)
    assert torch.equal(m(x), m2(x))


def test_official_checkpoint_goes_through_the_converter(tmp_path):
    m = create_model("toyarch_nano", num_classes=5)
    path = tmp_path / "official.pth"
    torch.save({"state_dict": {f"module.backbone.{k}": v for k, v in m.state_dict().items()}}, path)
    m2 = create_model("toyarch_nano", num_classes=5, pretrained=path)
    assert torch.equal(m2.head.weight, m.head.weight)


def test_mismatch_lists_missing_unexpected_and_shapes(tmp_path):
    m = create_model("toyarch_nano", num_classes=5)
    sd = dict(m.state_dict())
    sd.pop("head.bias")
    sd["surplus.weight"] = torch.zeros(1)
    sd["stem.weight"] = torch.zeros(7, 3, 1, 1, 1)
    with pytest.raises(CheckpointError) as e:
        check_and_load(create_model("toyarch_nano", num_classes=5), sd, source="x.pt")
    msg = str(e.value)
    assert "missing keys (1): head.bias" in msg and "unexpected keys (1): surplus.weight" in msg
    assert "stem.weight: checkpoint (7, 3, 1, 1, 1) vs model (4, 3, 1, 1, 1)" in msg
    report = check_and_load(create_model("toyarch_nano", num_classes=5),
                            {k: v for k, v in sd.items() if k != "stem.weight"}, strict=False)
    assert report["missing"] == ["stem.weight", "head.bias"] and report["unexpected"] == ["surplus.weight"]


def _fake_module(name, cls_name, base=dict, reduce=None):
    mod = types.ModuleType(name)
    cls = type(cls_name, (base,), {"__module__": name} | ({"__reduce__": reduce} if reduce else {}))
    setattr(mod, cls_name, cls)
    return mod, cls


def test_config_objects_are_read_inertly(tmp_path, monkeypatch):
    """Official checkpoints pickle a yacs CfgNode: readable with weights_only=True, without yacs or its code."""
    yacs, cfg_mod = types.ModuleType("yacs"), None
    cfg_mod, CfgNode = _fake_module("yacs.config", "CfgNode")
    monkeypatch.setitem(sys.modules, "yacs", yacs)
    monkeypatch.setitem(sys.modules, "yacs.config", cfg_mod)
    cfg = CfgNode(MODEL={"NAME": "x"})
    cfg.__dict__["__immutable__"] = True
    path = tmp_path / "official.pth"
    torch.save({"model": {"w": torch.ones(2)}, "config": cfg, "epoch": 1}, path)
    monkeypatch.delitem(sys.modules, "yacs.config")
    monkeypatch.delitem(sys.modules, "yacs")
    ck = load_checkpoint(path)
    assert torch.equal(ck["model"]["w"], torch.ones(2)) and ck["config"]["MODEL"] == {"NAME": "x"}


def test_arbitrary_pickles_are_refused(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    mod, Evil = _fake_module("evilpkg", "Payload", base=object,
                             reduce=lambda self: (open, (str(marker), "w")))
    monkeypatch.setitem(sys.modules, "evilpkg", mod)
    path = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.ones(1)}, "x": Evil()}, path)
    assert not marker.exists()  # saving only records the reduce call
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        load_checkpoint(path)
    assert not marker.exists()


def test_missing_and_corrupt_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_pretrained(create_model("toyarch_nano"), bad)
