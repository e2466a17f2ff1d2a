"""nn.Module: the registry, state_dict/load_state_dict, modes, devices, hooks, repr."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import nn
import tensorgrad as tg


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.scale = nn.Parameter(tg.ones(1))
        self.register_buffer("steps", tg.zeros(1))
        self.register_buffer("cache", tg.zeros(2), persistent=False)
        self.not_registered = tg.zeros(3)  # a plain Tensor attribute: not state

    def forward(self, x):
        return self.bn(self.conv(x)) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 3 * 3, 5))

    def forward(self, x):
        return self.head(self.block(x))


BLOCK_KEYS = ["conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
              "bn.num_batches_tracked"]


def test_state_dict_keys_are_pytorchs():
    sd = Net().state_dict()
    assert list(sd) == ["block.scale", "block.steps"] + ["block." + k for k in BLOCK_KEYS] + [
        "head.1.weight", "head.1.bias"]
    nbt = sd["block.bn.num_batches_tracked"]
    assert isinstance(nbt, tg.Tensor) and nbt.shape == () and nbt.dtype == np.int64


def test_state_dict_values_are_detached_and_share_memory():
    net = Net()
    sd = net.state_dict()
    w = sd["head.1.weight"]
    assert isinstance(w, tg.Tensor) and not isinstance(w, nn.Parameter)
    assert not w.requires_grad
    assert w.data is net.head[1].weight.data


def test_registries():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["block.scale", "block.conv.weight", "block.bn.weight", "block.bn.bias",
                     "head.1.weight", "head.1.bias"]
    assert [n for n, _ in net.named_buffers()] == [
        "block.steps", "block.cache", "block.bn.running_mean", "block.bn.running_var",
        "block.bn.num_batches_tracked"]
    assert [n for n, _ in net.named_modules()] == ["", "block", "block.conv", "block.bn", "head",
                                                    "head.0", "head.1"]
    assert [n for n, _ in net.named_children()] == ["block", "head"]
    assert list(net.children()) == [net.block, net.head]
    assert len(list(net.modules())) == 7
    assert [n for n, _ in net.block.named_parameters(recurse=False)] == ["scale"]


def test_tied_parameter_is_yielded_once(device):
    a, b = nn.Linear(3, 3).to(device), nn.Linear(3, 3).to(device)
    b.weight = a.weight
    model = nn.Sequential(a, b).to(device)
    assert len(list(model.parameters())) == 3
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "1.bias"]
    assert "1.weight" in model.state_dict()  # state_dict keeps every name, as PyTorch
    shared = nn.ReLU()
    assert len(list(nn.Sequential(shared, shared).to(device).modules())) == 2


def test_assignment_rules(device):
    m = nn.Linear(2, 2).to(device)
    with pytest.raises(TypeError, match="parameter 'weight'"):
        m.weight = tg.zeros(2, 2, device=device)
    m.bias = None
    assert m.bias is None and "bias" not in m.state_dict()
    m.extra = nn.Parameter(tg.ones(1, device=device))
    assert "extra" in dict(m.named_parameters())
    del m.extra
    assert "extra" not in dict(m.named_parameters())
    with pytest.raises(AttributeError):
        _ = m.missing
    bn = nn.BatchNorm1d(2).to(device)
    with pytest.raises(TypeError, match="buffer"):
        bn.running_mean = np.zeros(2)


def test_parameter_is_a_tensor_that_requires_grad(device):
    p = nn.Parameter(tg.randn(2, 3, device=device))
    assert isinstance(p, tg.Tensor) and p.requires_grad and p.is_leaf
    assert nn.Parameter([1.0, 2.0]).dtype == np.float32
    assert not nn.Parameter(tg.zeros(1, device=device), requires_grad=False).requires_grad
    assert repr(nn.Parameter(tg.zeros(1, device=device))).startswith("Parameter containing:")
    q = copy.deepcopy(p)
    assert isinstance(q, nn.Parameter) and q is not p and q.requires_grad
    np.testing.assert_array_equal(q.numpy(), p.numpy())


# ------------------------------------------------------------------ load_state_dict


def _snapshot(module):
    return {k: v.numpy() for k, v in module.state_dict().items()}


def test_load_state_dict_round_trip_from_numpy_arrays(device):
    src, dst = Net().to(device), Net().to(device)  # host arrays load onto the device
    src.block.bn.num_batches_tracked.data[...] = 7
    arrays = {k: v.numpy() for k, v in src.state_dict().items()}
    result = dst.load_state_dict(arrays)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for k, v in _snapshot(dst).items():
        np.testing.assert_array_equal(v, arrays[k], err_msg=k)
    assert dst.block.bn.num_batches_tracked.dtype == np.int64
    x = tg.randn(2, 2, 3, 3, device=device)
    np.testing.assert_allclose(src.eval()(x).numpy(), dst.eval()(x).numpy(), rtol=1e-6)


def test_load_keeps_parameter_identity_and_dtype(device):
    m = nn.Linear(2, 3).to(device)
    weight = m.weight
    m.load_state_dict({"weight": np.ones((3, 2)), "bias": np.zeros(3)})  # float64 in
    assert m.weight is weight and m.weight.dtype == np.float32
    np.testing.assert_array_equal(m.weight.numpy(), np.ones((3, 2)))


@pytest.mark.parametrize("change, words", [
    (lambda sd: sd.pop("block.bn.running_var"), ["Missing", "block.bn.running_var"]),
    (lambda sd: sd.update(extra=tg.zeros(1)), ["Unexpected", "extra"]),
    (lambda sd: sd.update({"head.1.weight": tg.zeros(5, 35)}),
     ["size mismatch", "head.1.weight", "(5, 35)", "(5, 36)"]),
])
def test_strict_load_failure_changes_nothing(change, words):
    src, dst = Net(), Net()
    before = _snapshot(dst)
    sd = src.state_dict()
    change(sd)
    with pytest.raises(RuntimeError) as info:
        dst.load_state_dict(sd)
    for w in words:
        assert w in str(info.value)
    for k, v in _snapshot(dst).items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_error_lists_every_problem_at_once(device):
    sd = Net().state_dict()
    sd.pop("head.1.bias")
    sd["bogus"] = tg.zeros(1, device=device)
    sd["block.scale"] = tg.zeros(2, device=device)
    with pytest.raises(RuntimeError) as info:
        Net().load_state_dict(sd)
    msg = str(info.value)
    assert "head.1.bias" in msg and "bogus" in msg and "block.scale" in msg


def test_non_strict_load_returns_keys_and_shape_mismatch_still_raises(device):
    src, dst = Net(), Net()
    sd = src.state_dict()
    sd.pop("head.1.bias")
    sd["extra.thing"] = tg.zeros(1, device=device)
    missing, unexpected = dst.load_state_dict(sd, strict=False)
    assert missing == ["head.1.bias"] and unexpected == ["extra.thing"]
    np.testing.assert_array_equal(dst.head[1].weight.numpy(), src.head[1].weight.numpy())
    sd["head.1.weight"] = tg.zeros(1, 1, device=device)
    before = _snapshot(dst)
    with pytest.raises(RuntimeError, match="size mismatch"):
        dst.load_state_dict(sd, strict=False)
    np.testing.assert_array_equal(dst.block.conv.weight.numpy(), before["block.conv.weight"])


# ------------------------------------------------------------------ modes, grads, apply


def test_train_eval_recursive():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.head.train(False)
    assert net.training and not net.head[1].training


def test_zero_grad(device):
    m = nn.Linear(3, 2).to(device)
    m(tg.randn(4, 3, device=device)).sum().backward()
    assert m.weight.grad is not None
    m.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(m.weight.grad.numpy(), np.zeros((2, 3)))
    m.zero_grad()
    assert m.weight.grad is None and m.bias.grad is None


def test_apply_visits_children_first():
    net = Net()
    order = []
    assert net.apply(lambda m: order.append(type(m).__name__)) is net
    assert order == ["Conv2d", "BatchNorm2d", "Block", "Flatten", "Linear", "Sequential", "Net"]


def test_to_dtype_keeps_parameter_identity():
    net = Net()
    params = list(net.parameters())
    net(tg.randn(2, 2, 3, 3)).sum().backward()
    assert net.to(tg.float64) is net
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in params)
    assert net.block.bn.num_batches_tracked.dtype == np.int64  # integers keep their dtype
    assert net.to("cpu") is net and net.cpu() is net
    assert all(p.device == "cpu" for p in net.parameters())
    net.float()
    assert all(p.dtype == np.float32 for p in params)


@pytest.mark.gpu
def test_cuda_moves_in_place_and_optimizer_follows():
    net = Net()
    opt = nn.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net.cuda()
    assert all(p.device == "cuda:0" for p in net.parameters())
    assert all(b.device == "cuda:0" for b in net.buffers())
    x = tg.randn(2, 2, 3, 3, device="cuda")
    net(x).sum().backward()
    opt.step()
    net.cpu()
    assert all(p.device == "cpu" for p in opt.param_groups[0]["params"])


# ------------------------------------------------------------------ hooks


def test_forward_hooks_see_and_replace(device):
    m = nn.Linear(3, 2).to(device)
    seen = []
    h1 = m.register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
    h2 = m.register_forward_hook(lambda mod, args, out: seen.append((mod, args[0].shape,
                                                                      out.shape)))
    h3 = m.register_forward_hook(lambda mod, args, out: out + 100)
    x = tg.randn(4, 3, device=device)
    y = m(x)
    np.testing.assert_allclose(y.numpy(), np.broadcast_to(m.bias.numpy() + 100, (4, 2)),
                               rtol=1e-6)
    assert seen == [(m, (4, 3), (4, 2))]
    for h in (h1, h2, h3):
        h.remove()
    np.testing.assert_allclose(m(x).numpy(), x.numpy() @ m.weight.numpy().T + m.bias.numpy(),
                               rtol=1e-5)
    assert len(seen) == 1


def test_hook_handle_as_context_manager(device):
    m = nn.ReLU()
    calls = []
    with m.register_forward_hook(lambda *a: calls.append(1)):
        m(tg.ones(1, device=device))
    m(tg.ones(1, device=device))
    assert calls == [1]


# ------------------------------------------------------------------ containers, repr


def test_sequential_and_module_list(device):
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)).to(device)
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear)
    sub = seq[1:]
    assert isinstance(sub, nn.Sequential) and len(sub) == 2 and sub[0] is seq[1]
    with pytest.raises(IndexError):
        seq[3]
    seq.append(nn.ReLU())
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    from collections import OrderedDict
    named = nn.Sequential(OrderedDict(fc=nn.Linear(2, 2), act=nn.ReLU())).to(device)
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]
    ml = nn.ModuleList([nn.Linear(1, 1), nn.Linear(1, 1)]).to(device)
    ml.append(nn.Linear(1, 1).to(device))
    assert len(ml) == 3 and len(list(ml.parameters())) == 6
    assert [n for n, _ in ml.named_parameters()][-1] == "2.bias"
    ml.insert(0, nn.ReLU())
    assert isinstance(ml[0], nn.ReLU) and isinstance(ml[3], nn.Linear)
    x = tg.ones(1, 2, device=device)
    np.testing.assert_array_equal(nn.Identity(5, foo=1)(x).numpy(), x.numpy())


def test_repr_is_pytorchs(device):
    model = nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.3)),
        nn.Conv2d(4, 8, 3, groups=2, bias=False),
    ).to(device)
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Conv2d(3, 64, kernel_size=(11, 11), stride=(4, 4), padding=(2, 2))\n"
        "  (1): ReLU(inplace=True)\n"
        "  (2): Sequential(\n"
        "    (0): Linear(in_features=3, out_features=4, bias=True)\n"
        "    (1): Dropout(p=0.3, inplace=False)\n"
        "  )\n"
        "  (3): Conv2d(4, 8, kernel_size=(3, 3), stride=(1, 1), groups=2, bias=False)\n"
        ")"
    )
    assert repr(nn.ReLU()) == "ReLU()"
    assert repr(nn.Sequential().to(device)) == "Sequential()"


def test_replacing_a_child_keeps_its_place(device):
    seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2)).to(device)
    seq[1] = nn.Identity()
    setattr(seq, "0", nn.Identity())
    assert [type(m).__name__ for m in seq] == ["Identity", "Identity", "Linear"]
    m = nn.Linear(2, 2).to(device)
    m.weight = nn.Parameter(tg.zeros(2, 2, device=device))
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]


def test_module_to_refuses_a_non_float_dtype_and_changes_nothing(device):
    m = nn.Linear(3, 2).to(device)
    before = m.weight.numpy().copy()
    for dtype in (tg.int64, tg.bool):
        with pytest.raises(TypeError, match="floating point"):
            m.to(dtype)
    assert m.weight.dtype == np.float32
    np.testing.assert_array_equal(m.weight.numpy(), before)
