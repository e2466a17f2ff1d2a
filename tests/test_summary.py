"""nn.summary: the lecture's AlexNet and GoogLeNet-stem tables (docs/lecture.md, issue 4)."""

from __future__ import annotations

import numpy as np
import pytest

import nn
import tensorgrad as tg


def alexnet_layers():
    """The lecture's AlexNet for 3×227×227, without ReLUs: one row per slide row."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.Conv2d(384, 256, 3, padding=1),
        nn.Conv2d(256, 256, 3, padding=1), nn.MaxPool2d(3, 2),
        nn.Flatten(), nn.Linear(9216, 4096), nn.Linear(4096, 4096), nn.Linear(4096, 1000),
    )


@pytest.fixture(scope="module")
def alexnet_summary():
    return nn.summary(alexnet_layers(), (3, 227, 227))


# name, output shape, memory KB, params, MFLOP (flops = multiply-adds, rounded to 0.1 M)
ALEXNET = [
    ("Conv2d", (64, 56, 56), 784.0, 23_296, 72.9),
    ("MaxPool2d", (64, 27, 27), 182.25, 0, 0.4),
    ("Conv2d", (192, 27, 27), 546.75, 307_392, 223.9),
    ("MaxPool2d", (192, 13, 13), 126.75, 0, 0.3),
    ("Conv2d", (384, 13, 13), 253.5, 663_936, 112.1),
    ("Conv2d", (256, 13, 13), 169.0, 884_992, 149.5),
    ("Conv2d", (256, 13, 13), 169.0, 590_080, 99.7),
    ("MaxPool2d", (256, 6, 6), 36.0, 0, 0.1),
    ("Flatten", (9216,), 36.0, 0, 0.0),
    ("Linear", (4096,), 16.0, 37_752_832, 37.7),
    ("Linear", (4096,), 16.0, 16_781_312, 16.8),
    ("Linear", (1000,), 1000 * 4 / 1024, 4_097_000, 4.1),
]


def test_alexnet_rows(alexnet_summary):
    rows = alexnet_summary.rows
    assert len(rows) == len(ALEXNET)
    for row, (kind, out, kb, params, mflop) in zip(rows, ALEXNET):
        assert set(row) == {"name", "type", "input_shape", "output_shape", "memory_kb", "params",
                            "flops"}
        assert row["type"] == kind
        assert row["output_shape"] == out
        assert row["memory_kb"] == kb
        assert row["params"] == params
        assert round(row["flops"] / 1e6, 1) == mflop, row
    assert rows[0]["input_shape"] == (3, 227, 227) and rows[0]["name"] == "0"
    assert rows[0]["flops"] == 64 * 56 * 56 * 3 * 11 * 11
    assert rows[9]["input_shape"] == (9216,)


def test_alexnet_totals(alexnet_summary):
    s = alexnet_summary
    assert s.total_params == 61_100_840
    assert round(s.total_params / 1e6, 1) == 61.1
    assert round(s.total_flops / 1e9, 2) == 0.72
    assert s.total_memory_kb == pytest.approx(sum(r[2] for r in ALEXNET))


def test_alexnet_table_text(alexnet_summary):
    text = str(alexnet_summary)
    header = text.splitlines()[0]
    for column in ("layer", "input C/H/W", "output C/H/W", "memory (KB)", "params (k)",
                   "flop (M)"):
        assert column in header
    conv1 = text.splitlines()[2]
    for cell in ("Conv2d", "3/227/227", "64/56/56", "784.00", "23.296", "72.9"):
        assert cell in conv1
    assert "61,100.840" in text.splitlines()[-1]


def test_googlenet_stem(device):
    stem = nn.Sequential(
        nn.Conv2d(3, 64, 7, stride=2, padding=3), nn.MaxPool2d(3, 2, padding=1),
        nn.Conv2d(64, 64, 1), nn.Conv2d(64, 192, 3, padding=1), nn.MaxPool2d(3, 2, padding=1),
    ).to(device)
    rows = nn.summary(stem, (3, 224, 224)).rows
    got = [(r["memory_kb"], r["params"], round(r["flops"] / 1e6, 1)) for r in rows]
    assert got == [(3136.0, 9472, 118.0), (784.0, 0, 1.8), (784.0, 4160, 12.8),
                   (2352.0, 110_784, 346.8), (588.0, 0, 1.4)]


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        self.bn = nn.BatchNorm2d(2)
        self.drop = nn.Dropout()
        self.pool = nn.AdaptiveAvgPool2d((2, 3))

    def forward(self, x):
        return self.pool(self.drop(self.bn(self.conv(self.conv(x)))))


def test_restores_modes_and_leaves_state_alone():
    model = Shared()
    model.drop.eval()  # a mixed-mode model keeps its mix
    before = {k: v.numpy() for k, v in model.state_dict().items()}
    s = nn.summary(model, (2, 6, 6))
    assert model.training and model.bn.training and not model.drop.training
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)
    assert not any(m._forward_hooks for m in model.modules())
    # a module called twice gives two rows but its weights count once in the total
    assert [r["name"] for r in s.rows] == ["conv", "conv", "bn", "drop", "pool"]
    assert s.total_params == 2 * 2 * 9 + 2 + 4
    assert s.rows[2]["params"] == 4 and s.rows[2]["flops"] == 0
    # adaptive 6×6 -> 2×3: windows of 3×2, flops C·H'·W'·3·2
    assert s.rows[4]["flops"] == 2 * 2 * 3 * 3 * 2


def test_adaptive_pool_with_uneven_windows():
    # 5 -> 3: PyTorch windows [0,2), [1,4), [3,5): lengths 2, 3, 2
    s = nn.summary(nn.AdaptiveAvgPool2d(3), (1, 5, 5))
    assert s.rows[0]["flops"] == 1 * 7 * 7
    assert s.rows[0]["output_shape"] == (1, 3, 3)


def test_summary_of_a_model_with_batchnorm_after_flatten_in_training_mode(device):
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.BatchNorm1d(3)).to(device)
    s = nn.summary(model, (4,))  # batch 1 would fail BatchNorm in training mode
    assert [r["output_shape"] for r in s.rows] == [(4,), (3,), (3,)]
    assert s.rows[1]["flops"] == 12 and s.rows[1]["params"] == 15
    assert model.training
    assert tg.is_grad_enabled()


def small_cnn():
    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 10))


@pytest.mark.parametrize("batch", [1, 8])
def test_batch_dim_zero_means_the_size_includes_the_batch(batch):
    # torchinfo's spelling: summary(model, (1, 3, 224, 224), batch_dim=0); rows stay per image
    model = small_cnn()
    with_batch = nn.summary(model, (batch, 3, 16, 16), batch_dim=0)
    without = nn.summary(model, (3, 16, 16))
    assert with_batch.rows == without.rows
    assert with_batch.rows[0]["input_shape"] == (3, 16, 16)
    assert with_batch.rows[0]["output_shape"] == (4, 8, 8)
    assert with_batch.rows[0]["memory_kb"] == 4 * 8 * 8 * 4 / 1024
    assert with_batch.rows[4]["flops"] == 64 * 10
    assert (with_batch.total_params, with_batch.total_flops) == (without.total_params,
                                                                 without.total_flops)
    two_inputs = nn.summary(model, [(batch, 3, 16, 16)], batch_dim=0)
    assert two_inputs.rows == without.rows


@pytest.mark.parametrize("size, batch_dim, words", [
    ((1, 3, 16, 16), 1, "batch_dim must be None"),
    ((1, 3, 16, 16), True, "batch_dim must be None"),
    ((0, 3, 16, 16), 0, "starts with the batch size"),
    ((), 0, "starts with the batch size"),
])
def test_bad_batch_dim_is_refused(size, batch_dim, words):
    with pytest.raises(ValueError, match=words):
        nn.summary(small_cnn(), size, batch_dim=batch_dim)
