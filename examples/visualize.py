"""Draw the backward graph of a ResNet basic block (the lecture's residual block).

    out = relu(bn2(conv2(relu(bn1(conv1(x))))) + downsample(x))

``tg.viz.to_dot`` turns the graph that ``loss.backward()`` will walk into Graphviz DOT:
one grey box per op (Conv2d, BatchNorm, ReLU, the Add of the shortcut ...), one blue
box per parameter, named as in ``block.named_parameters()``. The two paths into the
``Add`` are the residual branch and the shortcut; during backward the gradient reaching
``Add`` is copied into both, which is why a residual net trains when a plain one stalls.

With Graphviz installed (the ``dot`` program) the script writes an SVG; without it, the
``.dot`` text, which any Graphviz viewer renders.

    python examples/visualize.py                       # writes block.svg or block.dot
    python examples/visualize.py --out graphs/block.svg --stride 1
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout

import tensorgrad as tg  # noqa: E402


def basic_block(in_channels: int, channels: int, stride: int):
    """(block, params): ``models.resnet.BasicBlock`` with torchvision's projection shortcut."""
    from models.resnet import BasicBlock, projection_shortcut

    down = projection_shortcut(in_channels, channels, stride) if stride != 1 else None
    block = BasicBlock(in_channels if down is not None else channels, channels, stride, down)
    return block, dict(block.named_parameters())


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("block.svg"),
                        help="output path; the suffix becomes .dot when Graphviz is missing")
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--stride", type=int, default=2, choices=(1, 2),
                        help="2: the first block of a stage (downsample shortcut); 1: identity")
    args = parser.parse_args(argv)

    tg.manual_seed(0)
    in_channels = args.channels // 2 if args.stride == 2 else args.channels
    block, params = basic_block(in_channels, args.channels, args.stride)
    x = tg.randn(2, in_channels, 16, 16)
    loss = block(x).mean()
    dot = tg.viz.to_dot(loss, params=params)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    dot_program = shutil.which("dot")
    if dot_program and args.out.suffix != ".dot":
        out = args.out.with_suffix(".svg")
        subprocess.run([dot_program, "-Tsvg", "-o", str(out)], input=dot, text=True,
                       check=True)
    else:
        out = args.out.with_suffix(".dot")
        out.write_text(dot)
        if not dot_program:
            print("Graphviz (`dot`) not found: writing DOT text instead of SVG; "
                  f"render it with `dot -Tsvg {out} -o {out.with_suffix('.svg')}`")
    n_ops = dot.count('fillcolor="lightgrey"')
    print(f"wrote {out}: backward graph of a BasicBlock (stride {args.stride}), "
          f"{n_ops} ops, {len(params)} parameters")
    return out


if __name__ == "__main__":
    main()
