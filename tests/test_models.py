"""The lecture's architectures (models/): torchvision layouts, published parameter
counts, output shapes, GoogLeNet's outputs, Conv-BN fusion, the lecture's FLOP
figures, the residual/pre-activation block algebra, and a small learning test.

Expected values come from outside the code under test: torchvision's published
parameter counts, the key/shape lists in tests/torchvision_layouts/ (written from
torchvision's source, see generate.py there), and counts worked out by hand from the
papers. No test needs PyTorch.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import models
import nn
import tensorgrad as tg
import tensorgrad.functional as F
from models.cifar_resnet import ZeroPadShortcut
from models.preact_resnet import PreActBasicBlock, PreActBottleneck
from models.resnet import BasicBlock

ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = ROOT / "tests" / "torchvision_layouts"


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------- torchvision layouts
# layout file -> (constructor, kwargs, torchvision's published parameter count)
TORCHVISION = {
    "alexnet": (models.alexnet, {}, 61_100_840),
    "vgg11": (models.vgg11, {}, 132_863_336),
    "vgg13": (models.vgg13, {}, 133_047_848),
    "vgg16": (models.vgg16, {}, 138_357_544),
    "vgg19": (models.vgg19, {}, 143_667_240),
    "vgg11_bn": (models.vgg11, {"batch_norm": True}, 132_868_840),
    "vgg13_bn": (models.vgg13, {"batch_norm": True}, 133_053_736),
    "vgg16_bn": (models.vgg16, {"batch_norm": True}, 138_365_992),
    "vgg19_bn": (models.vgg19, {"batch_norm": True}, 143_678_248),
    "googlenet": (models.googlenet, {}, 13_004_888),
    "googlenet_noaux": (models.googlenet, {"aux_logits": False}, 6_624_904),
    "resnet18": (models.resnet18, {}, 11_689_512),
    "resnet34": (models.resnet34, {}, 21_797_672),
    "resnet50": (models.resnet50, {}, 25_557_032),
    "resnet101": (models.resnet101, {}, 44_549_160),
    "resnet152": (models.resnet152, {}, 60_192_808),
}


@pytest.mark.parametrize("name", list(TORCHVISION))
def test_torchvision_layout_and_parameter_count(name):
    ctor, kwargs, count = TORCHVISION[name]
    model = ctor(**kwargs)
    expected = json.loads((LAYOUTS / f"{name}.json").read_text())
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    assert not missing and not unexpected, f"missing {missing[:5]}, unexpected {unexpected[:5]}"
    wrong = {k: (got[k], expected[k]) for k in expected if got[k] != expected[k]}
    assert not wrong, f"shape mismatches (ours, torchvision's): {dict(list(wrong.items())[:5])}"
    assert list(got) == list(expected)  # PyTorch's state_dict order, too
    assert n_params(model) == count
    side = 64 if name.startswith(("alexnet", "googlenet")) else 32  # small, as allowed
    with tg.no_grad():
        assert model.eval()(tg.randn(1, 3, side, side)).shape == (1, 1000)


def test_torchvision_state_dict_loads_strictly_and_gives_same_logits():
    """A state_dict with torchvision's names (here: another instance's, as arrays, as the
    converter writes them) loads with strict=True and reproduces the logits."""
    tg.manual_seed(0)
    source = models.resnet18(num_classes=10).eval()
    for m in source.modules():  # non-trivial BN statistics
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.running_mean, -0.5, 0.5)
            nn.init.uniform_(m.running_var, 0.5, 2.0)
    arrays = {k: v.numpy().copy() for k, v in source.state_dict().items()}
    target = models.resnet18(num_classes=10).eval()
    result = target.load_state_dict(arrays, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = tg.randn(2, 3, 32, 32)
    with tg.no_grad():
        np.testing.assert_array_equal(target(x).numpy(), source(x).numpy())


# --------------------------------------------------------------- other parameter counts
def _cifar_count(n: int) -> int:
    """He et al. §4.2, worked out by hand: 3×3 convs without bias, BN (γ, β) after each,
    option A shortcuts (no parameters), FC 64→10."""
    stem = 3 * 16 * 9 + 2 * 16
    stage1 = 2 * n * (16 * 16 * 9 + 2 * 16)
    stage2 = 16 * 32 * 9 + (2 * n - 1) * 32 * 32 * 9 + 2 * n * 2 * 32
    stage3 = 32 * 64 * 9 + (2 * n - 1) * 64 * 64 * 9 + 2 * n * 2 * 64
    return stem + stage1 + stage2 + stage3 + 64 * 10 + 10


def test_cifar_counts_match_the_paper():
    # Table 6 of He et al.: 0.27 M, 0.46 M, 0.66 M, 0.85 M, 1.7 M
    published = {20: 0.27e6, 32: 0.46e6, 44: 0.66e6, 56: 0.85e6, 110: 1.7e6}
    n_blocks = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18}
    assert _cifar_count(3) == 269_722 and _cifar_count(9) == 853_018
    for depth, approx in published.items():
        for family in ("resnet", "plain"):
            count = n_params(getattr(models, f"{family}{depth}")())
            assert count == _cifar_count(n_blocks[depth]), (family, depth)
            assert abs(count - approx) / approx < 0.02, (family, depth, count)


def test_zfnet_is_alexnet_with_the_lectures_changes():
    # conv1 7×7 (64 filters), conv2 as AlexNet, conv3-5 512/1024/512, fc6 reads 512·6·6
    convs = [(3, 64, 7), (64, 192, 5), (192, 512, 3), (512, 1024, 3), (1024, 512, 3)]
    fcs = [(512 * 6 * 6, 4096), (4096, 4096), (4096, 1000)]
    expected = sum(o * i * k * k + o for i, o, k in convs) + sum(i * o + o for i, o in fcs)
    model = models.zfnet()
    assert n_params(model) == expected == 107_020_712
    conv1 = model.features[0]
    assert conv1.kernel_size == (7, 7) and conv1.stride == (2, 2)
    widths = [m.out_channels for m in model.features if isinstance(m, nn.Conv2d)]
    assert widths == [64, 192, 512, 1024, 512]
    alex = [m for m in models.alexnet().features if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in alex] == [64, 192, 384, 256, 256]
    assert alex[0].kernel_size == (11, 11) and alex[0].stride == (4, 4)


def test_preact_counts():
    # Same convs and FC as the ResNets; the BNs differ. ResNet-18 has BN over 4800
    # channels (stem 64, blocks 2·2·(64+128+256+512), downsample 128+256+512); the
    # pre-activation net over 3968 (stem 64, bn1 on each block's input 1472, bn2 1920,
    # final 512): 832 channels fewer, 2 parameters each. ResNet-50: 26560 vs 22784.
    assert n_params(models.preact_resnet18()) == 11_689_512 - 2 * 832
    assert n_params(models.preact_resnet50()) == 25_557_032 - 2 * 3776


# The lecture's ResNet table: blocks per stage.
RESNET_TABLE = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
                152: (3, 8, 36, 3)}


@pytest.mark.parametrize("family", ["resnet", "preact_resnet"])
@pytest.mark.parametrize("depth", [18, 50, 101])
def test_resnet_depth_counts_weighted_layers(family, depth):
    model = getattr(models, f"{family}{depth}")()
    stages = [model.layer1, model.layer2, model.layer3, model.layer4]
    assert tuple(len(s) for s in stages) == RESNET_TABLE[depth]
    layers = [name for name, m in model.named_modules()
              if isinstance(m, (nn.Conv2d, nn.Linear)) and "downsample" not in name]
    assert len(layers) == depth


@pytest.mark.parametrize("depth", [20, 56])
@pytest.mark.parametrize("family", ["resnet", "plain"])
def test_cifar_depth_counts_weighted_layers(family, depth):
    model = getattr(models, f"{family}{depth}")()
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weighted) == depth  # option A shortcuts add no layer
    assert [len(s) for s in (model.layer1, model.layer2, model.layer3)] == [(depth - 2) // 6] * 3


def test_bad_depths_are_rejected():
    from models.cifar_resnet import CifarResNet
    from models.resnet import resnet
    from models.vgg import vgg

    with pytest.raises(ValueError, match="18"):
        resnet(19)
    with pytest.raises(ValueError, match="6n"):
        CifarResNet(21)
    with pytest.raises(ValueError, match="16"):
        vgg(17)


# --------------------------------------------------------------- output shapes
# constructor -> input side; small inputs where the architecture allows
SHAPES = {
    "alexnet": 64, "zfnet": 64, "vgg11": 32, "googlenet": 64,
    "resnet18": 64, "resnet34": 32, "resnet50": 64, "resnet101": 32, "resnet152": 32,
    "preact_resnet18": 64, "preact_resnet34": 32, "preact_resnet50": 64,
    "preact_resnet101": 32, "preact_resnet152": 32,
    **{f"{f}{d}": 16 for f in ("resnet", "plain") for d in (20, 32, 44, 56, 110)},
}


# On a GPU (and the CuPy stand-in) one model per family: the CPU pass covers them all.
ON_DEVICE = {"googlenet", "resnet18", "preact_resnet18", "resnet20", "plain20"}


def one_per_family(names) -> list:
    """``names`` on the CPU; on another test device the ones of ``ON_DEVICE`` (chosen
    when the tests are collected, so none is collected only to be skipped)."""
    if os.environ.get("TG_TEST_DEVICE", "cpu") == "cpu":
        return list(names)
    return [n for n in names if n in ON_DEVICE]


@pytest.mark.parametrize("name", one_per_family(SHAPES))
def test_output_shape(name, device):
    side = SHAPES[name]
    model = getattr(models, name)(num_classes=7, in_channels=2).to(device).eval()
    with tg.no_grad():
        y = model(tg.randn(2, 2, side, side, device=device))
    assert isinstance(y, tg.Tensor) and y.shape == (2, 7)
    assert bool(np.isfinite(y.numpy()).all())


def test_default_sizes():
    assert models.alexnet().classifier[-1].out_features == 1000
    assert models.resnet20().fc.out_features == 10
    assert models.resnet20().conv1.in_channels == 3
    assert models.googlenet().fc.out_features == 1000


@pytest.mark.parametrize("name,side", [("alexnet", 224), ("alexnet", 227),
                                       ("zfnet", 224), ("zfnet", 227)])
def test_alexnet_and_zfnet_take_224_and_227(name, side):
    s = nn.summary(getattr(models, name)(), (3, side, side))
    assert s.rows[-1]["output_shape"] == (1000,)
    pool5 = [r for r in s.rows if r["name"] == "avgpool"][0]
    assert pool5["output_shape"][1:] == (6, 6)
    if name == "alexnet" and side == 227:  # the lecture's table: conv1 56×56, pool5 6×6
        assert s.rows[0]["output_shape"] == (64, 56, 56)
        assert pool5["input_shape"] == (256, 6, 6)
    if name == "zfnet":  # padding 3: 224 -> 112, 227 -> 114; pool5 at 13×13
        conv1_side = {224: 112, 227: 114}[side]
        assert s.rows[0]["output_shape"] == (64, conv1_side, conv1_side)
        assert pool5["input_shape"] == (512, 13, 13)


# --------------------------------------------------------------- GoogLeNet
def test_googlenet_outputs_train_and_eval():
    tg.manual_seed(0)
    model = models.googlenet(num_classes=5)
    x = tg.randn(2, 3, 64, 64)
    model.train()
    out = model(x)
    assert isinstance(out, models.GoogLeNetOutputs) and isinstance(out, tuple)
    assert out._fields == ("logits", "aux_logits2", "aux_logits1")
    assert all(isinstance(o, tg.Tensor) and o.shape == (2, 5) for o in out)
    # aux_logits1 comes from aux1 (after inception4a), aux_logits2 from aux2
    tapped = {}
    handles = [model.aux1.register_forward_hook(lambda m, i, o: tapped.setdefault("aux1", o)),
               model.aux2.register_forward_hook(lambda m, i, o: tapped.setdefault("aux2", o))]
    out = model(x)
    for h in handles:
        h.remove()
    assert out.aux_logits1 is tapped["aux1"] and out.aux_logits2 is tapped["aux2"]
    model.eval()
    y = model(x)
    assert isinstance(y, tg.Tensor) and y.shape == (2, 5)
    plain = models.googlenet(num_classes=5, aux_logits=False).train()
    assert plain.aux1 is None and plain.aux2 is None
    y = plain(x)
    assert isinstance(y, tg.Tensor) and y.shape == (2, 5)


def test_googlenet_trains_through_all_three_heads():
    model = models.googlenet(num_classes=3, in_channels=1).train()
    out = model(tg.randn(2, 1, 64, 64))
    target = tg.tensor(np.array([0, 2]))
    loss = F.cross_entropy(out.logits, target) + 0.3 * (
        F.cross_entropy(out.aux_logits1, target) + F.cross_entropy(out.aux_logits2, target))
    loss.backward()
    for head in (model.fc, model.aux1.fc2, model.aux2.fc2, model.conv1.conv):
        assert head.weight.grad is not None and float(abs(head.weight.grad).sum().item()) > 0


def test_googlenet_stem_and_body_at_224():
    """The lecture's stem table (224 → 112 → 56 → 28) and 1024×7×7 before the pool."""
    s = nn.summary(models.googlenet(aux_logits=False), (3, 224, 224))
    out = {r["name"]: r["output_shape"] for r in s.rows}
    assert out["conv1.conv"] == (64, 112, 112)
    assert out["maxpool1"] == (64, 56, 56)
    assert out["conv3.conv"] == (192, 56, 56)
    assert out["maxpool2"] == (192, 28, 28)
    assert out["maxpool3"] == (480, 14, 14)
    assert out["maxpool4"] == (832, 7, 7)
    avg = [r for r in s.rows if r["name"] == "avgpool"][0]
    assert avg["input_shape"] == (1024, 7, 7)
    rows = {r["name"]: r for r in s.rows}
    assert rows["conv1.conv"]["memory_kb"] == 3136  # the slide's stem memory figures
    assert rows["conv3.conv"]["memory_kb"] == 2352
    assert round(rows["fc"]["params"] / 1e3) == 1025  # FC 1024→1000: 1025 K params


# --------------------------------------------------------------- blocks
def _zero_convs(module):
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.zeros_(m.weight)


@pytest.mark.parametrize("block", [PreActBasicBlock, PreActBottleneck])
def test_preact_block_with_zero_branch_is_the_identity(block, device):
    """Nothing after the addition: a zero residual passes x through, negatives included."""
    b = block(64 * block.expansion, 64).to(device).train()  # training BN: still exactly x
    _zero_convs(b)
    x = tg.randn(2, 64 * block.expansion, 5, 5, device=device)
    np.testing.assert_array_equal(b(x).numpy(), x.numpy())


def test_original_block_with_zero_branch_is_relu(device):
    b = BasicBlock(16, 16).to(device)
    nn.init.zeros_(b.bn2.weight)  # branch output = β = 0
    x = tg.randn(2, 16, 4, 4, device=device)
    np.testing.assert_array_equal(b(x).numpy(), np.maximum(x.numpy(), 0))
    plain = BasicBlock(16, 16, residual=False).to(device)
    nn.init.zeros_(plain.bn2.weight)
    assert float(abs(plain(x)).sum().item()) == 0.0  # no shortcut: nothing gets through


def test_preact_network_ends_with_bn_relu():
    model = models.preact_resnet18(num_classes=4).eval()
    calls = []
    handles = [m.register_forward_hook(lambda m, i, o, n=n: calls.append(n))
               for n, m in model.named_modules() if n and not any(True for _ in m.children())]
    with tg.no_grad():
        model(tg.randn(1, 3, 32, 32))
    for h in handles:
        h.remove()
    assert calls[-5:] == ["bn_final", "relu", "avgpool", "flatten", "fc"]


def test_option_a_shortcut_subsamples_and_pads_with_zeros(device):
    s = ZeroPadShortcut(16, 32, stride=2)
    assert n_params(s) == 0
    x = tg.randn(2, 16, 8, 8, device=device)
    y = s(x).numpy()
    assert y.shape == (2, 32, 4, 4)
    np.testing.assert_array_equal(y[:, :16], x.numpy()[:, :, ::2, ::2])
    assert not y[:, 16:].any()


def test_plain_nets_have_no_shortcuts_and_resnets_do(device):
    plain, res = models.plain20().to(device), models.resnet20().to(device)
    assert not any(isinstance(m, ZeroPadShortcut) for m in plain.modules())
    assert sum(isinstance(m, ZeroPadShortcut) for m in res.modules()) == 2  # stages 2 and 3
    # same weights, different function: copy the weights and compare outputs
    plain.load_state_dict(res.state_dict(), strict=True)
    x = tg.randn(2, 3, 16, 16, device=device)
    with tg.no_grad():
        assert not np.allclose(plain.eval()(x).numpy(), res.eval()(x).numpy())


# --------------------------------------------------------------- fusion and summary
def _randomize_bn(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
            nn.init.uniform_(m.running_mean, -0.2, 0.2)
            nn.init.uniform_(m.running_var, 0.5, 1.5)


@pytest.mark.parametrize("name,side", [("resnet18", 64), ("resnet20", 16), ("googlenet", 64)]
                         if os.environ.get("TG_TEST_DEVICE", "cpu") == "cpu"
                         else [("resnet20", 16)])  # (one on another device: they are slow)
def test_fuse_conv_bn_gives_the_same_outputs(name, side, device):
    tg.manual_seed(1)
    model = getattr(models, name)(num_classes=10).to(device)
    _randomize_bn(model)
    model.eval().double()  # float64, so that the fold itself is not rounded to float32
    fused = nn.utils.fuse_conv_bn(model)
    # every BN follows a conv (declared fuse_pairs or Sequential order): none is left
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    x = tg.randn(2, 3, side, side, dtype=tg.float64, device=device)
    with tg.no_grad():
        np.testing.assert_allclose(fused(x).numpy(), model(x).numpy(), rtol=1e-9, atol=1e-9)


def test_summary_gflops_match_the_lecture():
    # the lecture's ResNet table: 1.8 and 3.6 GFLOP at 224×224 (basic blocks: no v1.5 shift)
    for ctor, gflop, tol in [(models.resnet18, 1.8, 0.05), (models.resnet34, 3.6, 0.1)]:
        s = nn.summary(ctor(), (3, 224, 224))
        assert abs(s.total_flops / 1e9 - gflop) < tol, (ctor.__name__, s.total_flops)


# --------------------------------------------------------------- learning
def _digits(n: int = 64):
    from sklearn.datasets import load_digits

    digits = load_digits()
    idx = np.random.default_rng(0).choice(len(digits.target), n, replace=False)
    # native 8×8: the three stages run at 8×8, 4×4 and 2×2 (cheap, and enough to fit)
    x = (digits.images[idx] / 16.0).astype(np.float32)[:, None]
    return x, digits.target[idx]


@pytest.mark.parametrize("name", ["resnet20", "plain20"])
def test_cifar_net_fits_64_digits(name):
    images, labels = _digits()
    x, t = tg.tensor(images), tg.tensor(labels)
    tg.manual_seed(0)
    model = getattr(models, name)(in_channels=1)
    opt = nn.optim.Adam(model.parameters(), lr=0.01)
    accuracy = 0.0
    for step in range(1, 61):
        loss = F.cross_entropy(model(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 5 == 0:
            with tg.no_grad():  # training accuracy, with the training forward (batch stats)
                accuracy = float((model(x).argmax(1).numpy() == labels).mean())
            if accuracy >= 0.95:
                break
    assert accuracy >= 0.95, f"{name}: {accuracy:.2f} after {step} steps"


# --------------------------------------------------------------- converter
def test_convert_torchvision_without_torch_says_so():
    script = ROOT / "examples" / "convert_torchvision.py"
    # run the script as if PyTorch were absent, whether or not it is installed here
    hide_torch = ("import runpy, sys; sys.modules['torch'] = None; sys.argv = sys.argv[1:]; "
                  "runpy.run_path(sys.argv[0], run_name='__main__')")
    r = subprocess.run([sys.executable, "-c", hide_torch, str(script), "in.pth", "out.npz"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "PyTorch" in r.stderr and "pip install torch" in r.stderr


def test_layout_files_agree_with_published_counts():
    """The JSON layouts themselves hold torchvision's parameter counts (weights and
    biases, not BN buffers), so a hand-edited file cannot drift unnoticed."""
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    for name, (_, _, count) in TORCHVISION.items():
        layout = json.loads((LAYOUTS / f"{name}.json").read_text())
        total = sum(math.prod(shape) for key, shape in layout.items()
                    if not key.endswith(buffers))
        assert total == count, name


def test_convert_torchvision_round_trip(tmp_path):
    """With PyTorch present: a .pth state_dict converts to an .npz that loads strictly."""
    torch = pytest.importorskip("torch")
    source = models.resnet18(num_classes=10)
    torch.save({k: torch.from_numpy(v.numpy().copy()) for k, v in source.state_dict().items()},
               tmp_path / "in.pth")
    script = ROOT / "examples" / "convert_torchvision.py"
    r = subprocess.run([sys.executable, str(script), str(tmp_path / "in.pth"),
                        str(tmp_path / "out.npz")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    target = models.resnet18(num_classes=10)
    target.load_state_dict(tg.load(tmp_path / "out.npz"), strict=True)
    for (k, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)


def test_lecture_tables_print_the_slides_numbers(capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("lecture_tables",
                                                  ROOT / "examples" / "lecture_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["alexnet", "googlenet"]) == 0
    out = capsys.readouterr().out
    # conv1 of AlexNet: ours beside the slide's 784 KB, 23 k params, 73 MFLOP
    conv1 = next(line for line in out.splitlines() if line.startswith("conv1 "))
    assert conv1.split()[1:] == ["64/56/56", "784.0", "784", "23.3", "23", "72.9", "73"]
    stem = next(line for line in out.splitlines() if line.startswith("conv 3×3"))
    assert stem.split()[2:] == ["192/56/56", "2352.0", "2352", "110.6", "111", "346.8", "347"]
    assert "61.1 M params" in out
