"""The PyTorch surface of ``nn`` that a port by changing imports hits: ``nn.functional``
as a module, the activation/softmax/dropout/loss layers, ``ModuleDict`` and
``Module.register_full_backward_hook``."""

from __future__ import annotations

import importlib
import inspect
import math
import warnings
from collections import namedtuple

import numpy as np
import pytest

import nn
import tensorgrad as tg

# ------------------------------------------------------------------ nn.functional


def test_nn_functional_is_tensorgrad_functional():
    import nn.functional as F  # the port of `import torch.nn.functional as F`
    from nn.functional import gelu, relu

    assert F is tg.functional and nn.functional is tg.functional
    assert importlib.import_module("nn.functional") is tg.functional
    assert relu is tg.functional.relu and gelu is tg.functional.gelu
    for name in ("one_hot", "leaky_relu", "gelu", "elu", "embedding", "dropout2d",
                 "binary_cross_entropy_with_logits", "cross_entropy", "nll_loss"):
        assert name in F.__all__ and callable(getattr(F, name)), name


def test_nn_exports_exist():
    for name in nn.__all__:
        assert hasattr(nn, name), name
    for name in ("LeakyReLU", "GELU", "ELU", "Softmax", "LogSoftmax", "Embedding", "Dropout2d",
                 "ModuleDict", "NLLLoss", "BCEWithLogitsLoss", "functional"):
        assert name in nn.__all__, name


# ------------------------------------------------------------------ layers

# PyTorch's constructor defaults and reprs
DEFAULTS = [
    (nn.LeakyReLU, dict(negative_slope=0.01, inplace=False), "LeakyReLU(negative_slope=0.01)"),
    (nn.GELU, dict(approximate="none"), "GELU(approximate='none')"),
    (nn.ELU, dict(alpha=1.0, inplace=False), "ELU(alpha=1.0)"),
    (nn.Softmax, dict(dim=None), "Softmax(dim=None)"),
    (nn.LogSoftmax, dict(dim=None), "LogSoftmax(dim=None)"),
    (nn.Dropout2d, dict(p=0.5, inplace=False), "Dropout2d(p=0.5, inplace=False)"),
    (nn.NLLLoss, dict(weight=None, ignore_index=-100, reduction="mean"), "NLLLoss()"),
    (nn.BCEWithLogitsLoss, dict(weight=None, reduction="mean", pos_weight=None),
     "BCEWithLogitsLoss()"),
    (nn.CrossEntropyLoss, dict(weight=None, ignore_index=-100, label_smoothing=0.0),
     "CrossEntropyLoss()"),
    (nn.Embedding, dict(padding_idx=None, max_norm=None, sparse=False), None),
]


@pytest.mark.parametrize("cls, defaults, text", DEFAULTS, ids=lambda v: getattr(v, "__name__", ""))
def test_constructor_defaults_and_repr(cls, defaults, text):
    params = inspect.signature(cls.__init__).parameters
    for name, value in defaults.items():
        assert params[name].default == value, name
    if text is not None:
        assert repr(cls()) == text


def test_activation_layers_compute_their_formulas(device):
    x = np.linspace(-3, 3, 13)
    t = tg.tensor(x, device=device)
    np.testing.assert_array_equal(nn.LeakyReLU(0.2)(t).numpy(), np.where(x > 0, x, 0.2 * x))
    np.testing.assert_allclose(nn.ELU(0.5)(t).numpy(), np.where(x > 0, x, 0.5 * np.expm1(x)),
                               rtol=1e-15)
    phi = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x])
    np.testing.assert_allclose(nn.GELU()(t).numpy(), x * phi, rtol=1e-14)
    tanh_form = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(nn.GELU("tanh")(t).numpy(), tanh_form, rtol=1e-14, atol=1e-15)
    assert repr(nn.LeakyReLU(0.2, inplace=True)) == "LeakyReLU(negative_slope=0.2, inplace=True)"
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        nn.GELU("fast")


def test_softmax_layers(device):
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    e = np.exp(x - x.max(axis=2, keepdims=True))
    want = e / e.sum(axis=2, keepdims=True)
    np.testing.assert_allclose(nn.Softmax(dim=-1)(tg.tensor(x, device=device)).numpy(), want,
                               rtol=1e-14)
    np.testing.assert_allclose(nn.LogSoftmax(dim=2)(tg.tensor(x, device=device)).numpy(),
                               np.log(want),
                               rtol=1e-13)
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)"


@pytest.mark.parametrize("shape, dim", [((5,), 0), ((2, 3), 1), ((2, 3, 4), 0), ((2, 3, 4, 5), 1)])
def test_softmax_without_dim_takes_pytorchs_legacy_dim_and_warns(shape, dim, device):
    x = tg.tensor(np.random.default_rng(1).standard_normal(shape), device=device)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        out = nn.Softmax()(x)
    np.testing.assert_allclose(out.numpy().sum(axis=dim), 1.0, rtol=1e-14)
    with pytest.warns(UserWarning, match="Implicit dimension choice for log_softmax"):
        out = nn.LogSoftmax()(x)
    np.testing.assert_allclose(np.exp(out.numpy()).sum(axis=dim), 1.0, rtol=1e-14)


@pytest.mark.parametrize("shape", [(64, 32, 3, 5), (256, 2, 2)])
def test_dropout2d_zeroes_whole_channels(shape, device):
    tg.manual_seed(3)
    layer = nn.Dropout2d(p=0.25)
    x = tg.ones(*shape, requires_grad=True, device=device)
    y = layer(x).numpy()
    planes = y.reshape(*shape[:-2], -1)
    dropped = np.all(planes == 0, axis=-1)
    kept = np.all(planes == np.float32(1 / 0.75), axis=-1)
    assert np.all(dropped | kept)  # each channel is dropped or kept as a whole
    assert abs(dropped.mean() - 0.25) < 0.05  # 2048 or 512 independent channels
    layer(x).sum().backward()
    assert np.all(np.isin(x.grad.numpy(), [0, np.float32(1 / 0.75)]))
    layer.eval()
    assert layer(x) is x


def test_dropout2d_errors(device):
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) or \(C, H, W\)"):
        nn.Dropout2d()(tg.ones(4, 5, device=device))
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout2d(1.5)


def test_nll_loss_layer_with_weight_and_ignore_index(device):
    logp = np.log(np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]]))
    t = tg.tensor(np.array([1, 0, -100]), device=device)
    layer = nn.NLLLoss(weight=tg.tensor(np.array([2.0, 1.0]), device=device))
    # -(1·log 0.8 + 2·log 0.6) / (1 + 2); the ignored third sample counts nowhere
    want = -(np.log(0.8) + 2 * np.log(0.6)) / 3
    assert layer(tg.tensor(logp, device=device), t).item() == pytest.approx(want, rel=1e-14)
    assert list(layer.state_dict()) == ["weight"]
    assert list(nn.NLLLoss().state_dict()) == []


# ------------------------------------------------------------------ ModuleDict


def test_module_dict_registers_and_behaves_like_a_dict(device):
    d = nn.ModuleDict({"conv": nn.Conv2d(1, 2, 3), "act": nn.ReLU()}).to(device)
    d["fc"] = nn.Linear(2, 3).to(device)
    d.update([("norm", nn.BatchNorm1d(3).to(device))])
    assert list(d) == list(d.keys()) == ["conv", "act", "fc", "norm"]
    assert len(d) == 4 and "fc" in d and "missing" not in d
    assert isinstance(d["fc"], nn.Linear)
    assert list(d.state_dict())[:4] == ["conv.weight", "conv.bias", "fc.weight", "fc.bias"]
    assert sum(p.numel() for p in d.parameters()) == 2 * 9 + 2 + 6 + 3 + 3 + 3
    assert [k for k, _ in d.items()] == ["conv", "act", "fc", "norm"]
    popped = d.pop("act")
    assert isinstance(popped, nn.ReLU) and "act" not in d
    del d["norm"]
    assert list(d) == ["conv", "fc"]
    d.clear()
    assert len(d) == 0 and list(d.parameters()) == []


def test_module_dict_in_a_model_trains_and_moves_with_it(device):
    class Heads(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = nn.ModuleDict({"a": nn.Linear(3, 1), "b": nn.Linear(3, 2)}).to(device)

        def forward(self, x, head):
            return self.heads[head](x)

    model = Heads()
    assert [n for n, _ in model.named_parameters()] == [
        "heads.a.weight", "heads.a.bias", "heads.b.weight", "heads.b.bias"]
    model(tg.randn(4, 3, device=device), "b").sum().backward()
    assert model.heads["a"].weight.grad is None and model.heads["b"].weight.grad is not None
    model.eval()
    assert not model.heads["b"].training
    assert repr(nn.ModuleDict({"a": nn.ReLU()}).to(device)) == "ModuleDict(\n  (a): ReLU()\n)"


def test_module_dict_errors_change_nothing(device):
    d = nn.ModuleDict({"a": nn.ReLU()}).to(device)
    with pytest.raises(TypeError, match="keys must be strings"):
        d[1] = nn.ReLU()
    with pytest.raises(TypeError, match="is not a Module subclass"):
        d.update({"b": nn.ReLU(), "c": 3})
    with pytest.raises(ValueError, match="should be a \\(key, module\\) pair"):
        d.update([("b", nn.ReLU()), "c"])
    with pytest.raises(KeyError, match="without '.'"):
        d.update({"b": nn.ReLU(), "x.y": nn.ReLU()})
    assert list(d) == ["a"]  # nothing of a failed update was added
    with pytest.raises(KeyError):
        d["missing"]


# ------------------------------------------------------------------ backward hooks


def test_full_backward_hook_sees_grad_input_and_grad_output(device):
    rng = np.random.default_rng(2)
    layer = nn.Linear(4, 2).to(device)
    calls = []
    layer.register_full_backward_hook(lambda m, gi, go: calls.append((m, gi, go)))
    x = tg.tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True, device=device)
    g = rng.standard_normal((3, 2)).astype(np.float32)
    layer(x).backward(tg.tensor(g, device=device))
    assert len(calls) == 1
    module, grad_input, grad_output = calls[0]
    assert module is layer and isinstance(grad_input, tuple) and isinstance(grad_output, tuple)
    assert len(grad_input) == 1 and len(grad_output) == 1
    assert isinstance(grad_input[0], tg.Tensor) and isinstance(grad_output[0], tg.Tensor)
    np.testing.assert_allclose(grad_output[0].numpy(), g)
    np.testing.assert_allclose(grad_input[0].numpy(), g @ layer.weight.numpy(), rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), g @ layer.weight.numpy(), rtol=1e-6)


def test_full_backward_hook_may_replace_grad_input(device):
    layer = nn.Linear(3, 2).to(device)
    layer.register_full_backward_hook(lambda m, gi, go: (gi[0] * 3,))
    x = tg.randn(5, 3, requires_grad=True, device=device)
    layer(x).sum().backward()
    want = 3 * np.ones((5, 2), np.float32) @ layer.weight.numpy()
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-6)
    # the parameters' gradients come from the module's own graph and are unchanged
    np.testing.assert_allclose(layer.weight.grad.numpy(),
                               np.ones((2, 5), np.float32) @ x.numpy(), rtol=1e-6)


class Product(nn.Module):
    def forward(self, a, scale, b):
        return a * b * scale


def test_grad_input_has_one_slot_per_tensor_input_none_where_no_gradient(device):
    seen = []
    m = Product()
    m.register_full_backward_hook(lambda mod, gi, go: seen.append(gi))
    a = tg.tensor(np.array([1.0, 2.0]), requires_grad=True, device=device)
    b = tg.tensor(np.array([3.0, 5.0]), device=device)  # needs no gradient
    m(a, 2.0, b).sum().backward()
    (grad_input,) = seen
    assert len(grad_input) == 2 and grad_input[1] is None  # the float 2.0 has no slot
    np.testing.assert_array_equal(grad_input[0].numpy(), [6.0, 10.0])
    # a returned None removes that gradient, as PyTorch
    m.register_full_backward_hook(lambda mod, gi, go: (None, None))
    a.grad = None
    m(a, 2.0, b).sum().backward()
    assert a.grad is None


def test_hook_fires_with_none_when_no_input_requires_grad(device):
    layer = nn.Linear(2, 2).to(device)
    seen = []
    layer.register_full_backward_hook(lambda m, gi, go: seen.append((gi, go)))
    layer(tg.ones(1, 2, device=device)).sum().backward()
    assert len(seen) == 1 and seen[0][0] == (None,)
    np.testing.assert_array_equal(seen[0][1][0].numpy(), [[1.0, 1.0]])
    assert layer.weight.grad is not None


def test_hooks_chain_run_per_call_and_are_removable(device):
    order = []
    net = nn.Sequential(nn.Linear(2, 2), nn.Tanh(), nn.Linear(2, 1)).to(device)
    h0 = net[0].register_full_backward_hook(lambda m, gi, go: order.append("first"))
    net[2].register_full_backward_hook(lambda m, gi, go: order.append("last"))
    net.register_full_backward_hook(lambda m, gi, go: order.append("net"))
    x = tg.randn(3, 2, requires_grad=True, device=device)
    net(x).sum().backward()
    assert order == ["last", "first", "net"]  # backward visits the later layer first
    order.clear()
    shared = nn.Linear(2, 2).to(device)
    shared.register_full_backward_hook(lambda m, gi, go: order.append("shared"))
    shared(shared(x)).sum().backward()
    assert order == ["shared", "shared"]
    order.clear()
    h0.remove()
    net(x).sum().backward()
    assert order == ["last", "net"]
    order.clear()
    with tg.no_grad():
        net(x)
    assert order == []


def test_hook_sees_tuple_outputs(device):
    Pair = namedtuple("Pair", ["left", "right"])

    class Split(nn.Module):
        def forward(self, x):
            return Pair(x * 2, x * 3)

    seen = []
    m = Split()
    m.register_full_backward_hook(lambda mod, gi, go: seen.append((gi, go)))
    x = tg.randn(2, requires_grad=True, device=device)
    out = m(x)
    assert isinstance(out, Pair)
    (out.left.sum() + 10 * out.right.sum()).backward()
    gi, go = seen[0]
    np.testing.assert_array_equal(go[0].numpy(), [1, 1])
    np.testing.assert_array_equal(go[1].numpy(), [10, 10])
    np.testing.assert_array_equal(gi[0].numpy(), [32, 32])


def test_bad_hook_results_are_refused(device):
    layer = nn.Linear(2, 2).to(device)
    layer.register_full_backward_hook(lambda m, gi, go: (gi[0], gi[0]))
    with pytest.raises(RuntimeError, match="expected a tuple of 1, got 2"):
        layer(tg.randn(1, 2, requires_grad=True, device=device)).sum().backward()
    other = nn.Linear(2, 2).to(device)
    other.register_full_backward_hook(lambda m, gi, go: (tg.ones(3, device=device),))
    with pytest.raises(RuntimeError, match="changed the size"):
        other(tg.randn(1, 2, requires_grad=True, device=device)).sum().backward()


def test_no_hooks_no_wrapping(device):
    layer = nn.Linear(2, 2).to(device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = layer(tg.randn(1, 2, device=device))
    assert y.grad_fn is not None and "BackwardHook" not in repr(y.grad_fn)
