import re
import sys
import types

import pytest
import torch
from torch import nn

import vidlab
from vidlab.errors import CheckpointError, ConfigError
from vidlab.models import ModelInfo, Recipe, create_model, get_recipe, list_models, model_info, register_model
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
def toyarch_nano(num_classes=400, num_frames=8, img_size=64, **kw):     # a _nano takes its recipe's input (8x64²)
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


# --------------------------------------------------------------------------------------------------------------
# A registered _nano size is the model its recipe trains
# --------------------------------------------------------------------------------------------------------------
# parameters at 10 classes of the model each recipe trains (what the zoo's runs hold)
NANO_PARAMS = {"video_focalnet_nano": 2_486_888, "video_mobileformer_nano": 2_498_622, "dualformer_nano": 2_297_162,
               "ila_nano": 3_168_410, "ila_token_nano": 2_834_202, "sifa_nano": 1_290_058, "vit_joint_nano": 482_602, "vit_divided_nano": 651_562,
               "r2plus1d_nano": 784_590, "r2plus1d_small_nano": 172_568,
               # notebook 03's design space: video_focalnet_nano's size and recipe in the two other designs
               "video_focalnet_sequential_nano": 2_486_888, "video_focalnet_spatial_nano": 1_449_593}


def _shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_every_nano_is_listed():
    assert set(NANO_PARAMS) == {n for n in list_models("*_nano") if model_info(n)["arch"] != "toyarch"}


@pytest.mark.parametrize("name", sorted(NANO_PARAMS))
def test_a_nano_is_the_model_its_recipe_trains(name):
    """create_model(name) == the model `vidlab zoo` and `vidlab train` build from the recipe (num_frames, img_size and
    the recipe's build arguments), and model_info states the recipe's input."""
    from vidlab.pretrain import check_pretrain
    rec = get_recipe(name)
    assert rec.model == {}, "a nano's build arguments are its registration's defaults"
    with torch.device("meta"):
        default = create_model(name, num_classes=10)
        trained = create_model(name, num_classes=10, num_frames=rec.num_frames, img_size=rec.img_size, **rec.model)
    assert _shapes(default) == _shapes(trained)
    assert (default.cfg.num_frames, default.cfg.img_size) == (rec.num_frames, rec.img_size)
    assert sum(p.numel() for p in default.parameters()) == NANO_PARAMS[name]
    info = model_info(name)
    assert info["input"] == rec.input == f"{rec.num_frames}x{rec.img_size}x{rec.img_size}"
    for text in (info["variant"], info["notes"]):     # "at 8x32x32", "at 8x32²": the recipe's input, nothing else
        for t, h, w in re.findall(r"\bat (\d+)x(\d+)(?:x(\d+)|²)", text):
            assert (int(t), int(h), int(w or h)) == (rec.num_frames, rec.img_size, rec.img_size), text
    if rec.pretrain:   # the frame model (vidlab.pretrain) shares its tensors with the video model it initialises
        p = check_pretrain(dict(rec.pretrain))
        with torch.device("meta"):
            frame = create_model(name, num_classes=p["grid"] ** 2, num_frames=p["num_frames"], img_size=rec.img_size,
                                 **p["model"])
        shared = {k for k, s in _shapes(frame).items() if _shapes(default).get(k) == s}
        assert len(shared) > len(_shapes(frame)) // 2, sorted(set(_shapes(frame)) - shared)
    x = torch.randn(1, 3, rec.num_frames, rec.img_size, rec.img_size)
    with torch.no_grad():
        assert create_model(name, num_classes=10).eval()(x).shape == (1, 10)


def test_a_nano_registration_that_disagrees_with_its_recipe_is_refused():
    rec = Recipe(num_frames=8, img_size=32)

    def toyarch2_nano(num_classes=400, num_frames=8, img_size=128, **kw):
        return _Tiny(num_classes, num_frames, img_size, **kw)

    with pytest.raises(ConfigError, match="default img_size=128 differs from its recipe's 32"):
        register_model(recipe=rec)(toyarch2_nano)
    toyarch2_nano.__defaults__ = (400, 8, 32)
    with pytest.raises(ConfigError, match="takes no build arguments"):
        register_model(recipe=rec.replace(model={"width": 2}))(toyarch2_nano)
    with pytest.raises(ConfigError, match="ModelInfo input '8x128x128' differs from its recipe's '8x32x32'"):
        register_model(recipe=rec, info=ModelInfo(input="8x128x128"))(toyarch2_nano)
    assert "toyarch2_nano" not in list_models()
