"""vidlab.profile: exact MAC/FLOP counts on small blocks, uncounted ops, latency, memory and scaling."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vidlab.profile import Complexity, attention_macs, complexity, latency, peak_memory, register_formula, scaling


class Fn(nn.Module):
    """Wrap a function of the inputs as a module (complexity takes modules)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


def test_linear_exact():
    m = nn.Linear(24, 40)
    c = complexity(m, (3, 7, 24))
    assert c.macs == 3 * 7 * 24 * 40
    assert c.flops == 2 * c.macs
    assert c.params == 24 * 40 + 40 == c.trainable_params
    assert c.uncounted == {}


def test_grouped_conv3d_exact():
    m = nn.Conv3d(8, 12, kernel_size=(3, 3, 3), stride=(1, 2, 2), padding=1, groups=4, bias=False)
    c = complexity(m, (2, 8, 4, 10, 10))
    out = 2 * 12 * 4 * 5 * 5                      # (B, C_out, T, H/2, W/2)
    assert c.macs == out * (8 // 4) * 27
    assert c.flops == 2 * c.macs


def test_matmul_exact():
    c = complexity(Fn(lambda a, b: a @ b), (torch.randn(2, 3, 5, 7), torch.randn(2, 3, 7, 11)))
    assert c.macs == 2 * 3 * 5 * 7 * 11


@pytest.mark.parametrize("kw", [{}, {"is_causal": True}, {"attn_mask": "float"}, {"attn_mask": "bool"}])
def test_cpu_sdpa_exact(kw):
    B, h, nq, nk, d, dv = 2, 3, 6, 6, 8, 8
    q, k, v = torch.randn(B, h, nq, d), torch.randn(B, h, nk, d), torch.randn(B, h, nk, dv)
    if kw.get("attn_mask") == "float":
        kw = {"attn_mask": torch.randn(nq, nk)}
    elif kw.get("attn_mask") == "bool":
        kw = {"attn_mask": torch.rand(nq, nk) > 0.3}
    c = complexity(Fn(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kw)), (q, k, v))
    expected = B * h * nq * nk * d + B * h * nq * nk * dv      # QK^T + AV, counted dense
    assert c.macs == expected == attention_macs(q.shape, k.shape, v.shape)
    assert not c.unknown_ops, c.uncounted


def test_cpu_sdpa_equals_explicit_math():
    """The registered CPU formula agrees with FlopCounterMode on the explicit softmax(QK^T)V."""
    sdpa = Fn(lambda q, k, v: F.scaled_dot_product_attention(q, k, v))
    explicit = Fn(lambda q, k, v: (q @ k.transpose(-2, -1) * 0.5).softmax(-1) @ v)
    q, k, v = torch.randn(1, 2, 9, 4), torch.randn(1, 2, 5, 4), torch.randn(1, 2, 5, 4)
    fused = complexity(sdpa, (q, k, v))      # the fused CPU kernel FlopCounterMode does not know
    assert "aten._scaled_dot_product_flash_attention_for_cpu" in set(fused.by_op["op"])
    assert fused.macs == complexity(explicit, (q, k, v)).macs == 1 * 2 * 9 * 5 * (4 + 4)
    v = torch.randn(1, 2, 5, 6)              # dv != d: torch falls back to the math path (bmm), same count
    assert complexity(sdpa, (q, k, v)).macs == complexity(explicit, (q, k, v)).macs == 1 * 2 * 9 * 5 * (4 + 6)


def test_sdpa_backward_counted():
    q = torch.randn(1, 2, 5, 4, requires_grad=True)
    c = complexity(Fn(lambda q: F.scaled_dot_product_attention(q, q, q)), (q,), backward=True)
    fwd = 2 * 5 * 5 * (4 + 4)
    assert c.macs == fwd + 2 * 5 * 5 * (4 * 5)   # forward (2 matmuls) + backward (5 matmuls)


def test_grid_sample_2d_3d_exact():
    x2, g2 = torch.randn(2, 5, 8, 8), torch.rand(2, 6, 7, 2) * 2 - 1
    c2 = complexity(Fn(lambda x, g: F.grid_sample(x, g, align_corners=False)), (x2, g2))
    assert c2.macs == 4 * 2 * 5 * 6 * 7
    x3, g3 = torch.randn(1, 3, 4, 8, 8), torch.rand(1, 2, 6, 7, 3) * 2 - 1
    c3 = complexity(Fn(lambda x, g: F.grid_sample(x, g, align_corners=True)), (x3, g3))
    assert c3.macs == 8 * 1 * 3 * 2 * 6 * 7
    cn = complexity(Fn(lambda x, g: F.grid_sample(x, g, mode="nearest", align_corners=False)), (x2, g2))
    assert cn.macs == 0 and cn.uncounted == {}


def test_macs_are_half_flops_on_a_block():
    block = nn.Sequential(nn.Conv3d(3, 16, (1, 3, 3), padding=(0, 1, 1)), nn.Conv3d(16, 16, (3, 1, 1), groups=2),
                          nn.Flatten(2), Fn(lambda x: x @ x.transpose(1, 2)))
    c = complexity(block, (1, 3, 5, 6, 6))
    assert c.flops == 2 * c.macs and c.flops > 0
    conv1 = 1 * 16 * 5 * 6 * 6 * 3 * 9
    conv2 = 1 * 16 * 3 * 6 * 6 * 8 * 3
    mm = 16 * 16 * (3 * 6 * 6)
    assert c.macs == conv1 + conv2 + mm
    rows = c.table.set_index("module")
    assert rows.loc["0", "macs"] == conv1 and rows.loc["1", "macs"] == conv2 and rows.loc["", "macs"] == c.macs
    assert (c.table["flops"] == 2 * c.table["macs"]).all()
    assert math.isclose(c.by_op["share"].sum(), 1.0)


def test_table_is_hierarchical():
    m = nn.Sequential(nn.Linear(4, 8), nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 2)))
    c = complexity(m, (3, 4))
    t = c.table.set_index("module")
    assert list(t.index) == ["", "0", "1", "1.0", "1.1"]
    assert t.loc["1", "macs"] == t.loc["1.0", "macs"] + t.loc["1.1", "macs"] == 3 * (64 + 16)
    assert t.loc["1", "depth"] == 1 and t.loc["1.1", "depth"] == 2 and t.loc["1", "params"] == 72 + 18
    text = str(c)
    assert "MAC" in text and "FLOP" in text and f"{c.flops:,}" in text


def test_uncounted_ops_are_listed_and_extra_counts_them():
    m = nn.Sequential(nn.Linear(6, 10), nn.LayerNorm(10), nn.GELU(), Fn(lambda x: x * torch.sigmoid(x)))
    c = complexity(m, (4, 6))
    assert c.uncounted == {"aten.native_layer_norm": 1, "aten.gelu": 1, "aten.sigmoid": 1, "aten.mul": 1}
    assert c.unknown_ops == {}
    assert c.uncounted_numel["aten.gelu"] == 40
    e = complexity(m, (4, 6), count_extra=True)
    assert e.uncounted == {}
    # layer norm with affine 7/element, gelu, sigmoid, mul 1/element each
    assert e.flops - c.flops == 40 * (7 + 1 + 1 + 1)


def test_unknown_op_shows_up():
    """An op with no formula outside the cheap families (here cdist) must be reported, not dropped; pure data
    movement such as im2col (F.unfold) is free."""
    m = Fn(lambda x: torch.cdist(x, x))
    c = complexity(m, (1, 6, 4), count_extra=True)
    assert any("cdist" in op for op in c.unknown_ops), c.unknown_ops
    assert complexity(Fn(lambda x: F.unfold(x, kernel_size=3)), (1, 2, 6, 6)).unknown_ops == {}


def test_view_ops_are_free():
    c = complexity(Fn(lambda x: x.view(2, -1).transpose(0, 1).reshape(-1, 3).contiguous()), (2, 3, 4))
    assert c.uncounted == {} and c.flops == 0


def test_extra_pool_and_norm_conventions():
    m = nn.Sequential(nn.BatchNorm3d(4), nn.MaxPool3d(2), nn.AdaptiveAvgPool3d(1))
    c = complexity(m, (1, 4, 4, 4, 4), count_extra=True)   # eval: BN uses running stats
    assert c.flops == 2 * 256 + 32 * 8 + 32
    assert c.uncounted == {}


def test_meta_device_and_mode_restored():
    with torch.device("meta"):
        m = nn.Sequential(nn.Linear(16, 16), nn.Dropout(0.5))
    m.train()
    c = complexity(m, (2, 16))
    assert c.macs == 2 * 16 * 16 and m.training


def test_latency_and_memory():
    m = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 8))
    x = torch.randn(64, 256)
    t = latency(m, x, warmup=1, iters=5)
    assert len(t.times_ms) == 5 and t.median_ms > 0 and t.iqr_ms >= 0 and t.device == "cpu"
    tb = latency(m, x, warmup=0, iters=2, backward=True)
    assert tb.backward and all(p.grad is None for p in m.parameters())
    mem = peak_memory(m, x)
    # the first Linear's output and the ReLU's output are alive together: 2 x 64 x 256 floats
    assert mem.method == "live-tensors" and mem.peak_bytes == 2 * 64 * 256 * 4
    memb = peak_memory(m, x, backward=True)
    n_params = sum(p.numel() for p in m.parameters())
    assert memb.peak_bytes >= n_params * 4 + 64 * 256 * 4     # gradients + saved activations


def test_scaling_table():
    def build(num_frames, img_size):
        return nn.Conv3d(3, 4, (1, 4, 4), stride=(1, 4, 4))          # same weights shape at every T, S

    df = scaling(build, frames=[2, 4], sizes=[8, 16], measure=("macs", "memory"))
    assert list(df["frames"]) == [2, 2, 4, 4] and list(df["size"]) == [8, 16, 8, 16]
    for r in df.itertuples():
        assert r.macs == 4 * r.frames * (r.size // 4) ** 2 * 3 * 16
        assert r.peak_mb > 0 and math.isnan(r.latency_ms)
    with pytest.raises(ValueError, match="measure"):
        scaling(build, frames=[2], sizes=[8], measure=("speed",))


def test_inputs_validation():
    with pytest.raises(TypeError, match="inputs"):
        complexity(nn.Linear(2, 2), "x")
    assert isinstance(complexity(nn.Linear(2, 2), {"input": torch.randn(1, 2)}), Complexity)


def test_register_formula_for_a_custom_op():
    lib = torch.library.Library("vidlab_test_profile", "DEF")
    lib.define("scale_rows(Tensor x) -> Tensor")
    lib.impl("scale_rows", lambda x: x * 2.0, "CompositeExplicitAutograd")
    op = torch.ops.vidlab_test_profile.scale_rows
    m = Fn(lambda x: op(x))
    assert "aten.mul" not in complexity(m, (3, 4)).uncounted    # the op runs as one unit: listed under its name
    assert complexity(m, (3, 4)).unknown_ops == {"vidlab_test_profile.scale_rows": 1}
    register_formula(op, lambda x_shape, out_shape=None: 2 * x_shape[0] * x_shape[1])
    c = complexity(m, (3, 4))
    assert c.macs == 12 and c.uncounted == {}


def test_uncalled_container_sums_its_children():
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])   # a ModuleList is never called

        def forward(self, x):
            for blk in self.blocks:
                x = blk(x)
            return x

    c = complexity(Stack(), (3, 4))
    t = c.table.set_index("module")
    assert t.loc["blocks", "macs"] == t.loc["", "macs"] == 2 * 3 * 16 == c.macs
    assert t.loc["blocks.1", "macs"] == 3 * 16
