"""``nn.summary(model, input_size)``: the lecture's per-layer table.

One forward pass on zeros (batch 1, eval mode, no graph) with a forward hook on
every leaf module records each leaf call's input and output shapes. Per row:

- memory (KB) = output elements × 4 bytes / 1024 (float32, one image);
- params = weights + biases of the layer;
- flops = multiply-adds: conv C_out·H'·W'·(C_in/groups)·K_h·K_w, linear in·out,
  pooling C·H'·W'·K_h·K_w; everything else (activations, normalization, flatten,
  dropout) 0. Adaptive pooling has windows of varying size: its flops are the
  exact count C·(Σ window heights)·(Σ window widths), which is C·H'·W'·K_h·K_w
  when the input size is a multiple of the output size (K = in/out).

AlexNet's conv1 at 3×227×227: 64×56×56 output, 784 KB, 23,296 params, 72.9 MFLOP.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import tensorgrad as tg
from tensorgrad.tensor import Tensor

from .conv import Conv2d
from .linear import Linear
from .module import Module
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d


def _pair(v) -> tuple[int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _adaptive_window_sum(size_in: int, size_out: int) -> int:
    """Σ over output positions of the adaptive window length (PyTorch's windows
    [⌊i·in/out⌋, ⌈(i+1)·in/out⌉))."""
    return sum(-(-(i + 1) * size_in // size_out) - (i * size_in // size_out)
               for i in range(size_out))


def layer_flops(module: Module, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one call, for shapes without the batch dim."""
    if isinstance(module, Conv2d):
        c_out, h, w = out_shape
        kh, kw = module.kernel_size
        return c_out * h * w * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, Linear):
        rows = math.prod(out_shape[:-1])  # extra leading dims each do a full product
        return rows * module.in_features * module.out_features
    if isinstance(module, (MaxPool2d, AvgPool2d)):
        kh, kw = _pair(module.kernel_size)
        return math.prod(out_shape) * kh * kw
    if isinstance(module, AdaptiveAvgPool2d):
        c, h_out, w_out = out_shape
        h_in, w_in = in_shape[-2:]
        return c * _adaptive_window_sum(h_in, h_out) * _adaptive_window_sum(w_in, w_out)
    return 0


def _first_tensor(value: Any) -> Tensor | None:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for v in value:
            t = _first_tensor(v)
            if t is not None:
                return t
    return None


def _without_batch(size: tuple, batch_dim: int) -> tuple:
    """An input size that includes the batch at ``batch_dim`` (only 0: layers see batch
    first), without it."""
    if isinstance(batch_dim, bool) or batch_dim != 0:
        raise ValueError(f"summary: batch_dim must be None (input_size excludes the batch) or "
                         f"0 (it starts with the batch), got {batch_dim!r}")
    if not size or isinstance(size[0], bool) or not isinstance(size[0], int) or size[0] < 1:
        raise ValueError(f"summary: with batch_dim=0, input_size starts with the batch size "
                         f"(at least 1), got {size}")
    return size[1:]


class Summary:
    """The table: ``rows`` (list of dicts), totals, and ``str()`` for printing."""

    COLUMNS = ("layer", "type", "input C/H/W", "output C/H/W", "memory (KB)", "params (k)",
               "flop (M)")

    def __init__(self, rows: list[dict[str, Any]], total_params: int):
        self.rows = rows
        self.total_params = total_params
        self.total_flops = sum(r["flops"] for r in rows)
        self.total_memory_kb = sum(r["memory_kb"] for r in rows)

    def __str__(self) -> str:
        def shape(s):
            return "/".join(str(d) for d in s)

        table = [self.COLUMNS]
        for r in self.rows:
            table.append((r["name"], r["type"], shape(r["input_shape"]), shape(r["output_shape"]),
                          f"{r['memory_kb']:.2f}", f"{r['params'] / 1e3:,.3f}",
                          f"{r['flops'] / 1e6:,.1f}"))
        table.append(("total", "", "", "", f"{self.total_memory_kb:.2f}",
                      f"{self.total_params / 1e3:,.3f}", f"{self.total_flops / 1e6:,.1f}"))
        widths = [max(len(row[i]) for row in table) for i in range(len(self.COLUMNS))]

        def line(row):
            left = [row[i].ljust(widths[i]) for i in range(4)]
            right = [row[i].rjust(widths[i]) for i in range(4, len(row))]
            return "  ".join(left + right).rstrip()

        rule = "-" * len(line(table[0]))
        return "\n".join([line(table[0]), rule, *map(line, table[1:-1]), rule, line(table[-1])])

    __repr__ = __str__


def summary(model: Module, input_size: Sequence[int] | Sequence[Sequence[int]],
            dtype=None, device=None, *, batch_dim: int | None = None) -> Summary:
    """Run ``model`` once on zeros of shape (1, *input_size) and tabulate its leaf layers.

    ``input_size`` excludes the batch, unless ``batch_dim=0`` (torchinfo's keyword) says
    that it starts with one: ``summary(model, (1, 3, 224, 224), batch_dim=0)``. Either
    way the rows are per image (the forward runs on a batch of 1). Pass a list of sizes
    for a model with several inputs. The model's training flags are restored afterwards
    and nothing else changes (eval mode, so BatchNorm running statistics are not touched).
    """
    sizes = list(input_size)
    if sizes and isinstance(sizes[0], (tuple, list)):
        sizes = [tuple(s) for s in sizes]
    else:
        sizes = [tuple(sizes)]
    if batch_dim is not None:
        sizes = [_without_batch(s, batch_dim) for s in sizes]
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else "cpu"
    names = {m: name for name, m in model.named_modules()}
    rows: list[dict[str, Any]] = []
    counted: set[int] = set()
    total_params = 0

    def record(module, inputs, output):
        nonlocal total_params
        x, y = _first_tensor(inputs), _first_tensor(output)
        in_shape = x.shape[1:] if x is not None else ()
        out_shape = y.shape[1:] if y is not None else ()
        params = sum(p.numel() for p in module.parameters())
        if id(module) not in counted:  # a layer called twice holds its weights once
            counted.add(id(module))
            total_params += params
        rows.append({
            "name": names.get(module, "") or type(module).__name__,
            "type": type(module).__name__,
            "input_shape": tuple(in_shape),
            "output_shape": tuple(out_shape),
            "memory_kb": math.prod(out_shape) * 4 / 1024,
            "params": params,
            "flops": layer_flops(module, tuple(in_shape), tuple(out_shape)),
        })

    modes = {m: m.training for m in model.modules()}
    handles = [m.register_forward_hook(record) for m in model.modules()
               if not any(True for _ in m.children())]
    try:
        model.eval()
        inputs = [tg.zeros((1, *s), dtype=dtype, device=device) for s in sizes]
        with tg.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode
    return Summary(rows, total_params)
