"""nn.utils: clip_grad_norm_ and fuse_conv_bn."""

from __future__ import annotations

import numpy as np
import pytest

import nn
import tensorgrad as tg


def _params_with_grads(grads):
    params = []
    for g in grads:
        p = nn.Parameter(tg.zeros(np.shape(g)))
        p.grad = tg.tensor(np.asarray(g, dtype=np.float32))
        params.append(p)
    return params


def test_clip_grad_norm_scales_when_above():
    params = _params_with_grads([[3.0, 0.0], [0.0, 4.0, 0.0]])  # total norm 5
    total = nn.utils.clip_grad_norm_(params, max_norm=1.0)
    assert isinstance(total, tg.Tensor) and total.item() == pytest.approx(5.0)
    scale = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(params[0].grad.numpy(), [3 * scale, 0], rtol=1e-6)
    np.testing.assert_allclose(params[1].grad.numpy(), [0, 4 * scale, 0], rtol=1e-6)


def test_clip_grad_norm_leaves_small_gradients():
    params = _params_with_grads([[0.3, 0.4]])
    total = nn.utils.clip_grad_norm_(params, max_norm=1.0)
    assert total.item() == pytest.approx(0.5)
    np.testing.assert_array_equal(params[0].grad.numpy(), np.array([0.3, 0.4], np.float32))


def test_clip_grad_norm_other_norms_and_missing_grads(device):
    params = _params_with_grads([[1.0, -7.0], [2.0]])
    params.append(nn.Parameter(tg.zeros(2, device=device)))  # no grad: ignored
    assert nn.utils.clip_grad_norm_(params, 100.0, norm_type=float("inf")).item() == 7.0
    assert nn.utils.clip_grad_norm_(params, 100.0, norm_type=1).item() == pytest.approx(10.0)
    single = _params_with_grads([[6.0, 8.0]])[0]
    assert nn.utils.clip_grad_norm_(single, 5.0).item() == pytest.approx(10.0)
    np.testing.assert_allclose(single.grad.numpy(), [3.0, 4.0], rtol=1e-5)
    assert nn.utils.clip_grad_norm_([], 1.0).item() == 0.0


def test_clip_does_not_double_scale_a_shared_gradient_array(device):
    a, b = nn.Parameter(tg.ones(2, device=device)), nn.Parameter(tg.ones(2, device=device))
    (a + b).sum().backward()  # Add's backward may hand both leaves the same array
    nn.utils.clip_grad_norm_([a, b], max_norm=1.0)
    np.testing.assert_allclose(a.grad.numpy(), [0.5, 0.5], rtol=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), [0.5, 0.5], rtol=1e-5)


# ------------------------------------------------------------------ fuse_conv_bn


def _randomise_bn(model):
    """Give every BatchNorm non-trivial statistics and affine parameters."""
    rng = np.random.default_rng(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            with tg.no_grad():  # copy_ takes host values onto the module's device
                m.running_mean.copy_(rng.normal(size=c))
                m.running_var.copy_(rng.uniform(0.5, 2.0, size=c))
                if m.affine:
                    m.weight.copy_(rng.uniform(0.5, 1.5, size=c))
                    m.bias.copy_(rng.normal(size=c))


class Block(nn.Module):
    fuse_pairs = [("conv1", "bn1"), ("down.0", "down.1")]

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.down = nn.Sequential(nn.Conv2d(3, 4, 1, stride=1), nn.BatchNorm2d(4, affine=False))

    def forward(self, x):
        return (self.bn1(self.conv1(x)) + self.down(x)).relu()


def _compare(model, x):
    model.eval()
    want = model(x).numpy()
    fused = nn.utils.fuse_conv_bn(model)
    got = fused(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    return fused


def test_fuse_sequential_pairs(device):
    tg.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, groups=2), nn.BatchNorm2d(8), nn.MaxPool2d(2),
                          nn.BatchNorm2d(8)).to(device)  # the last BN follows a pool: kept
    _randomise_bn(model)
    model.train()
    before = {k: v.numpy() for k, v in model.state_dict().items()}
    fused = _compare(model, tg.randn(2, 3, 8, 8, device=device))
    assert isinstance(fused[1], nn.Identity) and isinstance(fused[4], nn.Identity)
    assert isinstance(fused[6], nn.BatchNorm2d)
    assert not fused.training
    # the original is untouched
    assert isinstance(model[1], nn.BatchNorm2d)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)


def test_fuse_declared_pairs_of_a_block(device):
    tg.manual_seed(1)
    model = nn.Sequential(Block(), nn.Conv2d(4, 2, 1)).to(device)
    _randomise_bn(model)
    fused = _compare(model, tg.randn(2, 3, 5, 5, device=device))
    block = fused[0]
    assert isinstance(block.bn1, nn.Identity) and isinstance(block.down[1], nn.Identity)
    assert block.conv1.bias is not None  # a bias is created to carry β − γμ/σ
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())


def test_fused_conv_weights_follow_the_formula(device):
    conv, bn = nn.Conv2d(2, 3, 1).to(device), nn.BatchNorm2d(3).to(device)
    _randomise_bn(nn.Sequential(bn).to(device))
    fused = nn.utils.fuse_conv_bn(nn.Sequential(conv, bn).to(device))[0]
    s = bn.weight.numpy() / np.sqrt(bn.running_var.numpy() + bn.eps)
    np.testing.assert_allclose(fused.weight.numpy(), conv.weight.numpy() * s[:, None, None, None],
                               rtol=1e-6)
    np.testing.assert_allclose(fused.bias.numpy(),
                               (conv.bias.numpy() - bn.running_mean.numpy()) * s + bn.bias.numpy(),
                               rtol=1e-5, atol=1e-6)


def test_clip_grad_norm_minus_inf_and_zero_norms(device):
    # -inf: the smallest magnitude of all entries; 0: nonzero gradients counted, as
    # torch.nn.utils.clip_grad_norm_ (whose 0-norm of each gradient counts its nonzeros)
    a, b, c = (tg.zeros(2, requires_grad=True, device=device),
               tg.zeros(1, requires_grad=True, device=device),
               tg.zeros(2, requires_grad=True, device=device))
    a.grad = tg.tensor([1.0, -3.0], device=device)
    b.grad = tg.tensor([0.5], device=device)
    c.grad = tg.tensor([0.0, 0.0], device=device)
    assert nn.utils.clip_grad_norm_([a, b], 1e6, norm_type=-float("inf")).item() == 0.5
    total = nn.utils.clip_grad_norm_([a, b, c], 1e6, norm_type=0)
    assert total.item() == 2.0 and total.dtype == np.float32
    nn.utils.clip_grad_norm_([a, b], 0.25, norm_type=-float("inf"))  # 0.5 > 0.25: halved
    np.testing.assert_allclose(a.grad.numpy(), [0.5, -1.5], rtol=1e-5)
