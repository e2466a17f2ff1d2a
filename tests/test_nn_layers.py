"""nn layers: constructor defaults, default initialisation, state, and the forward
computation against NumPy written out here."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

import nn
import tensorgrad as tg

# PyTorch's constructor defaults, which the layers promise to keep
DEFAULTS = [
    (nn.Linear, dict(bias=True)),
    (nn.Conv2d, dict(stride=1, padding=0, dilation=1, groups=1, bias=True)),
    (nn.MaxPool2d, dict(stride=None, padding=0, ceil_mode=False)),
    (nn.AvgPool2d, dict(stride=None, padding=0, ceil_mode=False, count_include_pad=True)),
    (nn.BatchNorm1d, dict(eps=1e-5, momentum=0.1, affine=True, track_running_stats=True)),
    (nn.BatchNorm2d, dict(eps=1e-5, momentum=0.1, affine=True, track_running_stats=True)),
    (nn.InstanceNorm2d, dict(eps=1e-5, momentum=0.1, affine=False, track_running_stats=False)),
    (nn.LayerNorm, dict(eps=1e-5, elementwise_affine=True)),
    (nn.GroupNorm, dict(eps=1e-5, affine=True)),
    (nn.LocalResponseNorm, dict(alpha=1e-4, beta=0.75, k=1.0)),
    (nn.Dropout, dict(p=0.5, inplace=False)),
    (nn.ReLU, dict(inplace=False)),
    (nn.Flatten, dict(start_dim=1, end_dim=-1)),
    (nn.CrossEntropyLoss, dict(reduction="mean", label_smoothing=0.0)),
    (nn.MSELoss, dict(reduction="mean")),
]


@pytest.mark.parametrize("cls, defaults", DEFAULTS, ids=lambda v: getattr(v, "__name__", ""))
def test_constructor_defaults(cls, defaults):
    params = inspect.signature(cls.__init__).parameters
    for name, value in defaults.items():
        assert params[name].default == value, name


@pytest.mark.parametrize("make, fan_in", [
    (lambda: nn.Linear(50, 40), 50),
    (lambda: nn.Conv2d(6, 32, 5), 6 * 25),
    (lambda: nn.Conv2d(8, 32, (3, 5), groups=4), 2 * 15),
])
def test_default_init_is_kaiming_uniform_sqrt5(make, fan_in):
    tg.manual_seed(0)
    layer = make()
    bound = 1 / math.sqrt(fan_in)  # Kaiming-uniform with a=√5: gain·√(3/fan_in) = 1/√fan_in
    w, b = layer.weight.numpy(), layer.bias.numpy()
    assert w.dtype == np.float32 and layer.weight.requires_grad
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.1)
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.5 * bound


def test_init_is_reproducible_with_manual_seed(device):
    tg.manual_seed(42)
    a = nn.Conv2d(3, 4, 3).to(device)
    tg.manual_seed(42)
    b = nn.Conv2d(3, 4, 3).to(device)
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())
    np.testing.assert_array_equal(a.bias.numpy(), b.bias.numpy())


def test_norm_layers_init_and_state(device):
    bn = nn.BatchNorm2d(3).to(device)
    np.testing.assert_array_equal(bn.weight.numpy(), np.ones(3))
    np.testing.assert_array_equal(bn.bias.numpy(), np.zeros(3))
    np.testing.assert_array_equal(bn.running_mean.numpy(), np.zeros(3))
    np.testing.assert_array_equal(bn.running_var.numpy(), np.ones(3))
    assert bn.num_batches_tracked.item() == 0
    inorm = nn.InstanceNorm2d(3).to(device)
    assert list(inorm.state_dict()) == [] and inorm.weight is None
    bn1 = nn.BatchNorm1d(2, affine=False, track_running_stats=False).to(device)
    assert list(bn1.state_dict()) == []
    assert list(nn.GroupNorm(2, 4).to(device).state_dict()) == ["weight", "bias"]
    assert nn.LayerNorm([2, 3]).to(device).weight.shape == (2, 3)


# ------------------------------------------------------------------ forward vs NumPy


def conv2d_reference(x, w, b, stride, padding, groups=1):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho, wo = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    out = np.zeros((n, o, ho, wo))
    og = o // groups
    for oc in range(o):
        g = oc // og
        for i in range(ho):
            for j in range(wo):
                patch = xp[:, g * cg:(g + 1) * cg, i * stride:i * stride + kh,
                           j * stride:j * stride + kw]
                out[:, oc, i, j] = (patch * w[oc]).sum(axis=(1, 2, 3)) + b[oc]
    return out


def test_linear_forward(device):
    m = nn.Linear(4, 3).to(device)
    x = tg.randn(5, 4, device=device)
    np.testing.assert_allclose(m(x).numpy(), x.numpy() @ m.weight.numpy().T + m.bias.numpy(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("stride, padding, groups", [(1, 0, 1), (2, 1, 1), (1, 1, 2)])
def test_conv2d_forward(stride, padding, groups, device):
    m = nn.Conv2d(4, 6, 3, stride=stride, padding=padding, groups=groups).to(device)
    x = tg.randn(2, 4, 7, 6, device=device)
    want = conv2d_reference(x.numpy(), m.weight.numpy(), m.bias.numpy(), stride, padding, groups)
    np.testing.assert_allclose(m(x).numpy(), want, rtol=1e-4, atol=1e-5)


def test_conv2d_padding_same_and_valid(device):
    x = tg.randn(1, 2, 5, 5, device=device)
    assert nn.Conv2d(2, 3, 3, padding="same").to(device)(x).shape == (1, 3, 5, 5)
    assert nn.Conv2d(2, 3, 3, padding="valid").to(device)(x).shape == (1, 3, 3, 3)
    with pytest.raises(ValueError):
        nn.Conv2d(3, 4, 3, groups=2).to(device)


def test_pooling_forward(device):
    x = tg.randn(2, 3, 6, 6, device=device)
    a = x.numpy().reshape(2, 3, 3, 2, 3, 2)
    np.testing.assert_allclose(nn.MaxPool2d(2)(x).numpy(), a.max(axis=(3, 5)))
    np.testing.assert_allclose(nn.AvgPool2d(2)(x).numpy(), a.mean(axis=(3, 5)), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(nn.AdaptiveAvgPool2d((1, 1))(x).numpy(),
                               x.numpy().mean(axis=(2, 3), keepdims=True), rtol=1e-5, atol=1e-6)
    assert nn.MaxPool2d(3, 2)(tg.randn(1, 1, 56, 56, device=device)).shape == (1, 1, 27, 27)


def test_batchnorm2d_training_updates_running_stats_and_eval_uses_them(device):
    bn = nn.BatchNorm2d(3).to(device)
    with tg.no_grad():
        bn.weight.copy_(tg.tensor([1.0, 2.0, 0.5]))  # from the CPU, as copy_ may
        bn.bias.copy_(tg.tensor([0.0, 1.0, -1.0]))
    x = tg.randn(4, 3, 5, 5, device=device) * 2 + 1
    a = x.numpy().astype(np.float64)
    y = bn(x).numpy()
    mean, var = a.mean(axis=(0, 2, 3)), a.var(axis=(0, 2, 3))
    xhat = (a - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
    want = xhat * np.array([1.0, 2.0, 0.5])[:, None, None] + np.array([0.0, 1.0, -1.0])[:, None,
                                                                                        None]
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)
    unbiased = a.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * unbiased, rtol=1e-5)
    assert bn.num_batches_tracked.item() == 1
    bn.eval()
    before = bn.running_mean.numpy()
    y = bn(x).numpy()
    rm, rv = bn.running_mean.numpy()[:, None, None], bn.running_var.numpy()[:, None, None]
    want = (a - rm) / np.sqrt(rv + 1e-5) * np.array([1.0, 2.0, 0.5])[:, None, None] + np.array(
        [0.0, 1.0, -1.0])[:, None, None]
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(bn.running_mean.numpy(), before)
    assert bn.num_batches_tracked.item() == 1


def test_batchnorm_momentum_none_is_cumulative_average(device):
    bn = nn.BatchNorm1d(2, momentum=None).to(device)
    xs = [tg.randn(8, 2, device=device) + i for i in range(3)]
    for x in xs:
        bn(x)
    want = np.mean([x.numpy().mean(axis=0) for x in xs], axis=0)
    np.testing.assert_allclose(bn.running_mean.numpy(), want, rtol=1e-5)
    assert bn.num_batches_tracked.item() == 3


def test_batchnorm1d_accepts_ncl_and_rejects_wrong_dims(device):
    bn = nn.BatchNorm1d(3).to(device)
    assert bn(tg.randn(4, 3, 5, device=device)).shape == (4, 3, 5)
    with pytest.raises(ValueError, match="2D or 3D"):
        bn(tg.randn(4, 3, 2, 2, device=device))
    with pytest.raises(ValueError, match="4D"):
        nn.BatchNorm2d(3).to(device)(tg.randn(4, 3, device=device))
    with pytest.raises(ValueError, match="channels"):
        nn.BatchNorm2d(3).to(device)(tg.randn(4, 2, 3, 3, device=device))


def test_layer_group_instance_norm_forward(device):
    x = tg.randn(2, 4, 3, 3, device=device)
    a = x.numpy().astype(np.float64)

    def normalise(v, axes):
        return (v - v.mean(axis=axes, keepdims=True)) / np.sqrt(v.var(axis=axes, keepdims=True)
                                                                + 1e-5)

    np.testing.assert_allclose(nn.LayerNorm([4, 3, 3]).to(device)(x).numpy(),
                               normalise(a, (1, 2, 3)),
                               rtol=1e-4, atol=1e-5)
    g = normalise(a.reshape(2, 2, 2, 3, 3), (2, 3, 4)).reshape(a.shape)
    np.testing.assert_allclose(nn.GroupNorm(2, 4).to(device)(x).numpy(), g, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(nn.InstanceNorm2d(4).to(device)(x).numpy(), normalise(a, (2, 3)),
                               rtol=1e-4, atol=1e-5)
    assert nn.InstanceNorm2d(4).to(device)(x[0]).shape == (4, 3, 3)  # unbatched input


def test_local_response_norm_forward(device):
    x = tg.randn(1, 5, 2, 2, device=device)
    a = x.numpy().astype(np.float64)
    size, alpha, beta, k = 3, 1e-2, 0.75, 2.0
    sq = np.pad(a**2, ((0, 0), (1, 1), (0, 0), (0, 0)))
    div = (k + alpha / size * (sq[:, :-2] + sq[:, 1:-1] + sq[:, 2:])) ** beta
    np.testing.assert_allclose(nn.LocalResponseNorm(size, alpha, beta, k)(x).numpy(), a / div,
                               rtol=1e-5)


def test_dropout_train_and_eval(device):
    tg.manual_seed(0)
    d = nn.Dropout(0.25)
    x = tg.ones(200, 100, device=device)
    y = d(x).numpy()
    kept = y != 0
    assert np.allclose(y[kept], 1 / 0.75)
    assert kept.mean() == pytest.approx(0.75, abs=0.02)
    d.eval()
    np.testing.assert_array_equal(d(x).numpy(), x.numpy())
    with pytest.raises(ValueError):
        nn.Dropout(1.5)


def test_relu_flatten(device):
    x = tg.randn(2, 3, 4, 5, device=device)
    np.testing.assert_array_equal(nn.ReLU()(x).numpy(), np.maximum(x.numpy(), 0))
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 2)(x).shape == (24, 5)


def test_losses(device):
    logits = tg.randn(6, 4, device=device)
    target = tg.tensor([0, 1, 2, 3, 0, 1], device=device)
    z = logits.numpy().astype(np.float64)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    nll = -logp[np.arange(6), target.numpy()]
    assert nn.CrossEntropyLoss()(logits, target).item() == pytest.approx(nll.mean(), rel=1e-5)
    np.testing.assert_allclose(nn.CrossEntropyLoss(reduction="none")(logits, target).numpy(),
                               nll, rtol=1e-5)
    y = tg.randn(6, 4, device=device)
    assert nn.MSELoss()(logits, y).item() == pytest.approx(
        ((z - y.numpy()) ** 2).mean(), rel=1e-5)
    assert nn.MSELoss(reduction="sum")(logits, y).item() == pytest.approx(
        ((z - y.numpy()) ** 2).sum(), rel=1e-5)
    with pytest.raises(ValueError):
        nn.MSELoss(reduction="avg")


def test_layers_backpropagate_to_parameters(device):
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(12, 2)).to(device)
    loss = nn.CrossEntropyLoss()(model(tg.randn(4, 2, 4, 4, device=device)),
                                 tg.tensor([0, 1, 0, 1], device=device))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
        assert np.abs(p.grad.numpy()).sum() > 0, name


# ------------------------------------------------------------------ vs PyTorch (dev only)


def test_matches_torch_layers(device):
    torch = pytest.importorskip("torch")
    tg.manual_seed(1)
    ours = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.GroupNorm(2, 8), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(32, 5),
                         nn.LayerNorm(5)).to(device)
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1),
                                 torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.GroupNorm(2, 8),
                                 torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(32, 5),
                                 torch.nn.LayerNorm(5))
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    x = tg.randn(4, 3, 8, 8, device=device)
    for mode in ("train", "eval"):
        getattr(ours, mode)()
        getattr(theirs, mode)()
        np.testing.assert_allclose(ours(x).numpy(), theirs(torch.tensor(x.numpy())).detach()
                                   .numpy(), rtol=1e-4, atol=1e-5)
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k].numpy(), v.numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=k)


@pytest.mark.parametrize("call, error, words", [
    (lambda: nn.Conv2d("3", 4, 3), TypeError, "in_channels must be an int"),
    (lambda: nn.Linear(2.5, 3), TypeError, "must be ints"),
    (lambda: nn.Linear(-1, 3), ValueError, "non-negative"),
    (lambda: nn.optim.SGD(nn.Linear(2, 2).parameters(), lr="0.1"), TypeError, "a number"),
    (lambda: nn.Linear(2, 2).load_state_dict({"weight": "hello", "bias": tg.zeros(2)}),
     RuntimeError, "could not convert a str"),
])
def test_layer_and_optimizer_misuse_gets_a_clear_error(call, error, words):
    with pytest.raises(error, match=words):
        call()
