import torch
from torch import nn

from vidlab.viz import capture, filter_maps, group_by_kind, is_capturing, record, wants


class Inner(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.expensive_calls = 0

    def forward(self, x):
        y = self.lin(x)
        record(self, "act", y)
        if wants(self, "attention"):
            self.expensive_calls += 1
            record(self, "attention", torch.softmax(y @ y.transpose(-1, -2), -1))
        return y


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([Inner(), Inner()])

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x


def test_capture_records_paths_and_kinds_detached_on_cpu():
    m = Outer()
    x = torch.randn(2, 3, 4, requires_grad=True)
    with capture(m) as maps:
        m(x)
    assert list(maps) == ["blocks.0.act", "blocks.0.attention", "blocks.1.act", "blocks.1.attention"]
    assert maps["blocks.0.attention"].shape == (2, 3, 3)
    assert all(not v.requires_grad and v.device.type == "cpu" for v in maps.values())
    assert not is_capturing()


def test_no_cost_outside_capture_and_kind_filter():
    m = Outer()
    m(torch.randn(1, 3, 4))
    assert all(b.expensive_calls == 0 for b in m.blocks)
    with capture(m, kinds=["act"]) as maps:
        m(torch.randn(1, 3, 4))
    assert all(b.expensive_calls == 0 for b in m.blocks)   # the guarded map was never computed
    assert set(maps) == {"blocks.0.act", "blocks.1.act"}


def test_include_pattern_repeated_calls_and_grouping():
    m = Outer()
    with capture(m, include="blocks.1.*") as maps:
        m(torch.randn(1, 3, 4))
        m(torch.randn(1, 3, 4))
    assert list(maps) == ["blocks.1.act", "blocks.1.attention", "blocks.1.act:1", "blocks.1.attention:1"]
    g = group_by_kind(maps)
    assert list(g["act"]) == ["blocks.1", "blocks.1:1"]
    assert list(filter_maps(maps, "*.attention*")) == ["blocks.1.attention", "blocks.1.attention:1"]


def test_nested_captures_and_lazy_values():
    m = Outer()
    calls = []
    with capture(m, kinds=["act"]) as a, capture(m.blocks[0], kinds=["act"]) as b:
        m(torch.randn(1, 3, 4))
        record(m.blocks[0], "lazy", lambda: calls.append(1) or torch.zeros(1))
    assert "blocks.0.act" in a and "act" in b      # paths are relative to the captured module
    assert calls == []                              # no capture wanted "lazy": the callable never ran


def test_bf16_maps_are_float32():
    m = Outer().to(torch.bfloat16)
    with capture(m) as maps:
        m(torch.randn(1, 3, 4, dtype=torch.bfloat16))
    assert all(v.dtype == torch.float32 for v in maps.values())
