"""Conformance with PyTorch's behaviour, one regression test per discrepancy found by
auditing ``nn`` and the losses against torch 2.x. Expected values are NumPy
references or constants; the few direct torch comparisons skip without torch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nn
import tensorgrad as tg
import tensorgrad.functional as F

# ------------------------------------------------------------ Conv2d padding


def conv_reference(x, w, b, pad_hw):
    """Cross-correlation of (N, C, H, W) x with (O, C, kh, kw) w, stride 1, after
    zero padding ((top, bottom), (left, right)) = pad_hw."""
    x = np.pad(x, ((0, 0), (0, 0)) + tuple(pad_hw))
    o, _, kh, kw = w.shape
    ho, wo = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    out = np.zeros((x.shape[0], o, ho, wo))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("nchw,oc->nohw", x[:, :, i:i + ho, j:j + wo], w[:, :, i, j])
    return out + (0 if b is None else b[None, :, None, None])


@pytest.mark.parametrize("kernel, top_left, bottom_right", [
    ((3, 3), (1, 1), (1, 1)),
    ((2, 4), (0, 1), (1, 2)),  # even kernels: the extra row/column goes bottom/right
    ((1, 2), (0, 0), (0, 1)),
])
def test_conv2d_padding_same_keeps_size_with_any_kernel(kernel, top_left, bottom_right, device):
    conv = nn.Conv2d(2, 3, kernel, padding="same").to(device).double()
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 6))
    y = conv(tg.tensor(x, device=device))
    assert y.shape == (2, 3, 5, 6)
    pads = ((top_left[0], bottom_right[0]), (top_left[1], bottom_right[1]))
    want = conv_reference(x, conv.weight.numpy(), conv.bias.numpy(), pads)
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-10, atol=1e-12)


def test_conv2d_padding_strings_are_kept_as_pytorch(device):
    same = nn.Conv2d(2, 2, 3, dilation=2, padding="same").to(device)
    valid = nn.Conv2d(2, 2, 3, padding="valid").to(device)
    assert same.padding == "same" and valid.padding == "valid"
    assert repr(same) == ("Conv2d(2, 2, kernel_size=(3, 3), stride=(1, 1), padding=same, "
                          "dilation=(2, 2))")
    assert repr(valid) == "Conv2d(2, 2, kernel_size=(3, 3), stride=(1, 1), padding=valid)"
    assert nn.Conv2d(2, 2, 3, padding=1).to(device).padding == (1, 1)
    with pytest.raises(ValueError, match="padding"):
        nn.Conv2d(2, 2, 3, padding="full").to(device)
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(2, 2, 3, stride=2, padding="same").to(device)


def test_conv2d_accepts_unbatched_input(device):
    conv = nn.Conv2d(2, 3, 3, padding=1).to(device).double()
    x = np.random.default_rng(1).standard_normal((2, 4, 5))
    y = conv(tg.tensor(x, device=device))
    assert y.shape == (3, 4, 5)
    want = conv_reference(x[None], conv.weight.numpy(), conv.bias.numpy(), ((1, 1), (1, 1)))
    np.testing.assert_allclose(y.numpy(), want[0], rtol=1e-10, atol=1e-12)


def test_conv2d_padding_same_gradcheck_with_even_kernel(device):
    conv = nn.Conv2d(2, 2, (2, 3), padding="same", dilation=(1, 2)).to(device).double()
    x = tg.tensor(np.random.default_rng(2).standard_normal((1, 2, 4, 5)), requires_grad=True,
                  device=device)
    w, b = conv.weight, conv.bias
    assert tg.gradcheck(lambda x, w, b: conv(x), [x, w, b])


# ------------------------------------------------------------ normalization state


def test_batchnorm_rejected_input_changes_no_state(device):
    bn = nn.BatchNorm1d(3).to(device)
    with pytest.raises(ValueError):
        bn(tg.ones(1, 3, device=device))  # one value per channel: no batch statistics
    with pytest.raises(TypeError):
        bn(tg.tensor(np.ones((4, 3)), device=device))  # float64 input, float32 layer
    assert bn.num_batches_tracked.item() == 0
    np.testing.assert_array_equal(bn.running_mean.numpy(), np.zeros(3))
    np.testing.assert_array_equal(bn.running_var.numpy(), np.ones(3))


def test_batchnorm_momentum_none_is_a_cumulative_average(device):
    bn = nn.BatchNorm1d(2, momentum=None).to(device).double()
    batches = [np.random.default_rng(i).standard_normal((5, 2)) for i in range(3)]
    for b in batches:
        bn(tg.tensor(b, device=device))
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([b.mean(0) for b in batches], 0))
    np.testing.assert_allclose(bn.running_var.numpy(),
                               np.mean([b.var(0, ddof=1) for b in batches], 0))
    assert bn.num_batches_tracked.item() == 3


def test_instancenorm_tracks_running_stats_without_counting_batches(device):
    m = nn.InstanceNorm2d(3, track_running_stats=True).to(device).double()
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 4))
    m(tg.tensor(x, device=device))
    assert m.num_batches_tracked.item() == 0  # PyTorch never counts for InstanceNorm
    per_sample_mean = x.mean(axis=(2, 3))
    per_sample_var = x.var(axis=(2, 3), ddof=1)
    np.testing.assert_allclose(m.running_mean.numpy(), 0.1 * per_sample_mean.mean(0))
    np.testing.assert_allclose(m.running_var.numpy(), 0.9 + 0.1 * per_sample_var.mean(0))


# ------------------------------------------------------------ Module


def test_modulelist_repr_compresses_repeats_as_pytorch(device):
    ml = nn.ModuleList([nn.ReLU(), nn.ReLU(), nn.Linear(2, 2), nn.ReLU()]).to(device)
    assert repr(ml) == ("ModuleList(\n"
                        "  (0-1): 2 x ReLU()\n"
                        "  (2): Linear(in_features=2, out_features=2, bias=True)\n"
                        "  (3): ReLU()\n"
                        ")")
    assert repr(nn.ModuleList().to(device)) == "ModuleList()"
    nested = nn.ModuleList([nn.Sequential(nn.ReLU())] * 2).to(device)
    assert repr(nested) == "ModuleList(\n  (0-1): 2 x Sequential(\n    (0): ReLU()\n  )\n)"


def test_modules_remove_duplicate_flag(device):
    relu = nn.ReLU()
    net = nn.Sequential(relu, relu).to(device)
    assert len(list(net.modules())) == 2
    assert len(list(net.modules(remove_duplicate=False))) == 3


def test_load_state_dict_without_num_batches_tracked_is_accepted(device):
    src, dst = nn.BatchNorm2d(2).to(device), nn.BatchNorm2d(2).to(device)
    dst.num_batches_tracked.data[...] = 5
    sd = {k: v for k, v in src.state_dict().items() if k != "num_batches_tracked"}
    sd["running_mean"] = np.array([1.0, 2.0], dtype=np.float32)
    result = dst.load_state_dict(sd, strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert dst.num_batches_tracked.item() == 5  # absent from the checkpoint: kept
    np.testing.assert_array_equal(dst.running_mean.numpy(), [1.0, 2.0])
    del sd["weight"]
    with pytest.raises(RuntimeError, match="weight"):
        dst.load_state_dict(sd)


# ------------------------------------------------------------ optimizers


def test_optimizer_state_dict_keeps_tuples_and_no_empty_state(device):
    p = nn.Parameter(tg.ones(2, device=device))
    adam = nn.optim.Adam([p], betas=(0.8, 0.9))
    assert adam.state_dict()["param_groups"][0]["betas"] == (0.8, 0.9)
    sgd = nn.optim.SGD([p], lr=0.1)  # no momentum: nothing to remember
    p.grad = tg.ones(2, device=device)
    sgd.step()
    assert sgd.state_dict()["state"] == {}
    assert sgd.state[p] == {}  # a defaultdict, as PyTorch's


def test_optimizer_state_dict_round_trips_through_save(tmp_path, device):
    p = nn.Parameter(tg.tensor([1.0, -2.0], device=device))
    opt = nn.optim.Adam([p], lr=0.1, betas=(0.5, 0.6))
    p.grad = tg.tensor([0.5, 0.5], device=device)
    opt.step()
    tg.save(opt.state_dict(), tmp_path / "opt.npz")
    q = nn.Parameter(tg.tensor([1.0, -2.0], device=device))
    opt2 = nn.optim.Adam([q], lr=0.3)
    opt2.load_state_dict(tg.load(tmp_path / "opt.npz"))
    assert opt2.param_groups[0]["betas"] == (0.5, 0.6) and opt2.param_groups[0]["lr"] == 0.1
    assert opt2.state[q]["step"] == 1


# ------------------------------------------------------------ cross-entropy / NLL


def ref_ce_ignore(x, target, ignore_index, reduction, label_smoothing=0.0):
    """NumPy cross-entropy of (N, C) logits, skipping targets == ignore_index."""
    shifted = x - x.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    keep = target != ignore_index
    safe = np.where(keep, target, 0)
    nll = -logp[np.arange(len(x)), safe]
    loss = (1 - label_smoothing) * nll - label_smoothing * logp.mean(axis=1)
    loss = np.where(keep, loss, 0.0)
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / keep.sum()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.25])
def test_cross_entropy_skips_ignore_index(reduction, label_smoothing, device):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 4))
    target = np.array([1, -100, 3, -100, 0])
    xt = tg.tensor(x, requires_grad=True, device=device)
    loss = F.cross_entropy(xt, tg.tensor(target, device=device), reduction=reduction,
                           label_smoothing=label_smoothing)
    want = ref_ce_ignore(x, target, -100, reduction, label_smoothing)
    np.testing.assert_allclose(loss.numpy(), want, rtol=1e-10)
    loss.sum().backward()
    np.testing.assert_array_equal(xt.grad.numpy()[[1, 3]], 0.0)  # ignored rows: no gradient


def test_cross_entropy_ignore_index_may_be_a_class(device):
    x = np.random.default_rng(5).standard_normal((4, 3))
    target = np.array([2, 1, 2, 0])
    loss = nn.CrossEntropyLoss(ignore_index=2).double()(tg.tensor(x, device=device),
                                                        tg.tensor(target, device=device))
    np.testing.assert_allclose(loss.item(), ref_ce_ignore(x, target, 2, "mean"), rtol=1e-10)
    with pytest.raises(IndexError):  # -100 is only skipped when it is the ignore_index
        F.cross_entropy(tg.tensor(x, device=device),  # (on a GPU: at the next transfer)
                        tg.tensor(np.array([0, -100, 1, 1]), device=device),
                        ignore_index=2).item()


def test_cross_entropy_all_ignored_is_nan_with_zero_gradient(device):
    xt = tg.tensor(np.ones((2, 3)), requires_grad=True, device=device)
    loss = F.cross_entropy(xt, tg.tensor(np.array([-100, -100]), device=device))
    assert np.isnan(loss.item())
    loss.backward()
    np.testing.assert_array_equal(xt.grad.numpy(), np.zeros((2, 3)))


def test_nll_loss_skips_ignore_index(device):
    logp = np.log(np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]]))
    target = np.array([1, -100, 0])
    xt = tg.tensor(logp, requires_grad=True, device=device)
    loss = F.nll_loss(xt, tg.tensor(target, device=device))
    np.testing.assert_allclose(loss.item(), -(np.log(0.8) + np.log(0.5)) / 2)
    loss.backward()
    np.testing.assert_allclose(xt.grad.numpy(), [[0, -0.5], [0, 0], [-0.5, 0]])


@given(n=st.integers(1, 5), c=st.integers(2, 5), extra=st.integers(0, 2),
       ls=st.sampled_from([0.0, 0.3]), reduction=st.sampled_from(["mean", "sum", "none"]),
       seed=st.integers(0, 2**16))
def test_cross_entropy_with_ignored_targets_gradcheck(n, c, extra, ls, reduction, seed, device):
    rng = np.random.default_rng(seed)
    shape = (n, c) + (2,) * extra
    target = rng.integers(0, c, (n,) + (2,) * extra)
    target[rng.random(target.shape) < 0.4] = -100
    x = tg.tensor(rng.standard_normal(shape), requires_grad=True, device=device)
    t = tg.tensor(target, device=device)
    assert tg.gradcheck(
        lambda x: F.cross_entropy(x, t, reduction=reduction, label_smoothing=ls), [x])


def test_unbatched_cross_entropy_and_nll(device):
    x = np.array([0.5, -1.0, 2.0])
    logp = x - np.log(np.exp(x).sum())
    loss = F.cross_entropy(tg.tensor(x, device=device), tg.tensor(np.array(2), device=device),
                           reduction="none")
    assert loss.shape == ()
    np.testing.assert_allclose(loss.item(), -logp[2])
    np.testing.assert_allclose(F.nll_loss(tg.tensor(logp, device=device),
                                          tg.tensor(np.array(0), device=device)).item(),
                               -logp[0])


# ------------------------------------------------------------ against PyTorch itself


def test_against_torch_conv_same_and_ignore_index(device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    ours = nn.Conv2d(3, 2, (2, 3), padding="same").to(device).double()
    theirs = torch.nn.Conv2d(3, 2, (2, 3), padding="same").double()
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.numpy()))
        theirs.bias.copy_(torch.tensor(ours.bias.numpy()))
    x = rng.standard_normal((2, 3, 5, 4))
    np.testing.assert_allclose(ours(tg.tensor(x, device=device)).numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10)
    logits, target = rng.standard_normal((6, 4)), np.array([0, -100, 3, 2, -100, 1])
    want = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(target),
                                             label_smoothing=0.1)
    got = F.cross_entropy(tg.tensor(logits, device=device), tg.tensor(target, device=device),
                          label_smoothing=0.1)
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-10)


# ------------------------------------------------ second audit (session 9)


def test_an_ignored_row_with_infinite_logits_is_still_ignored(device):
    x = np.array([[-np.inf, 0.0, 1.0], [0.5, 0.2, 1.0]])
    t = tg.tensor(np.array([-100, 2]), device=device)
    kept = np.log(np.exp([0.5, 0.2, 1.0]).sum()) - 1.0  # the second row alone
    assert F.cross_entropy(tg.tensor(x, device=device), t).item() == pytest.approx(kept)
    assert F.nll_loss(tg.tensor(x, device=device), t).item() == -1.0
    none = F.cross_entropy(tg.tensor(x, device=device), t, reduction="none").numpy()
    np.testing.assert_allclose(none, [0.0, kept])
    smoothed = F.cross_entropy(tg.tensor(np.array([[0.3, -np.inf, 1.0], [0.5, 0.2, 1.0]]),
                                         device=device),
                               t, label_smoothing=0.1)
    assert np.isfinite(smoothed.item())


def test_multi_margin_loss_with_infinite_scores_and_one_unbatched_sample(device):
    # terms max(0, margin - x_y + x_j) over j != y, divided by C
    with np.errstate(invalid="ignore"):
        assert F.multi_margin_loss(tg.tensor([[-np.inf, 0.0, 1.0]], device=device),
                                   tg.tensor([1], device=device)).item() == pytest.approx(2 / 3)
        assert F.multi_margin_loss(tg.tensor([[np.inf, 0.0, 1.0]], device=device),
                                   tg.tensor([0], device=device)).item() == 0
    x = tg.tensor([0.1, 0.5, -0.2], requires_grad=True, device=device)
    loss = F.multi_margin_loss(x, tg.tensor(1, device=device))
    assert loss.shape == () and loss.item() == pytest.approx((0.6 + 0.3) / 3)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), [1 / 3, -2 / 3, 1 / 3], rtol=1e-6)


@pytest.mark.parametrize("x_shape, w_shape", [((3, 0), (2, 0)), ((3, 4), (0, 4)),
                                              ((2, 0, 4), (3, 4))])
def test_linear_backward_with_zero_sized_dimensions(x_shape, w_shape, device):
    x = tg.ones(*x_shape, requires_grad=True, device=device)
    w = tg.ones(*w_shape, requires_grad=True, device=device)
    b = tg.ones(w_shape[0], requires_grad=True, device=device)
    F.linear(x, w, b).sum().backward()
    assert x.grad.shape == x_shape and w.grad.shape == w_shape and b.grad.shape == w_shape[:1]
    # every gradient here is a sum over an empty axis, or of a gradient of ones over
    # zero features: all zeros, except db, which counts the rows
    assert not x.grad.numpy().any() and not w.grad.numpy().any()
    np.testing.assert_array_equal(b.grad.numpy(), np.full(w_shape[0], np.prod(x_shape[:-1])))


def test_dropout_refuses_integer_input_and_adaptive_pool_a_float_size(device):
    with pytest.raises(TypeError, match="floating-point"):
        F.dropout(tg.tensor(np.arange(1, 11), device=device), 0.3)
    with pytest.raises(TypeError, match="output_size"):
        F.adaptive_avg_pool2d(tg.zeros(1, 2, 4, 4, device=device), 2.5)


def test_max_pool_window_of_minus_infinities_routes_to_its_first_input(device):
    # padding 1: the corner window sees only x[0, 0] = -inf (and padding); PyTorch's scan
    # starts at the window's first input element, so that one gets the gradient
    x = tg.tensor(np.array([[[[-np.inf, 1.0], [2.0, 3.0]]]]), requires_grad=True, device=device)
    F.max_pool2d(x, 2, 1, 1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy().ravel(), [1.0, 2.0, 2.0, 4.0])
