"""Convert a torchvision checkpoint (``.pth``) to tensorgrad's ``.npz`` format.

    python examples/convert_torchvision.py resnet18-f37072fd.pth resnet18.npz
    python examples/convert_torchvision.py resnet18-f37072fd.pth resnet18.npz --model resnet18

The ImageNet models of ``models/`` (alexnet, vgg*, googlenet, resnet*) use torchvision's
parameter and buffer names and shapes, so the converted file loads as it is::

    net = models.resnet18()
    net.load_state_dict(tg.load("resnet18.npz"), strict=True)

(``googlenet``: torchvision's pretrained weights expect its ``transform_input=True``
re-normalisation, which tensorgrad's GoogLeNet does not do: feed it inputs scaled
the way torchvision's transform would, or fine-tune.)

This is the only place in the project that needs PyTorch, and only to read the
``.pth`` file (a pickle): it is opened with ``weights_only=True``, so it cannot run
code. The output is written with ``tg.save``, which never pickles.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

import numpy as np  # noqa: E402

import tensorgrad as tg  # noqa: E402


def read_torch_state_dict(path: str) -> dict[str, np.ndarray]:
    """The checkpoint's tensors as NumPy arrays, by name (unwrapping ``{"state_dict": ...}``
    / ``{"model": ...}`` and DataParallel's ``module.`` prefix)."""
    import torch

    obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a state_dict (a dict of tensors), "
                         f"got {type(obj).__name__}")
    arrays = {}
    for name, value in obj.items():
        if not torch.is_tensor(value):
            raise ValueError(f"{path}: entry {name!r} is a {type(value).__name__}, not a tensor")
        name = name.removeprefix("module.")
        arrays[name] = value.detach().cpu().numpy().copy()
    return arrays


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("input", help="torchvision state_dict (.pth)")
    parser.add_argument("output", help="tensorgrad checkpoint to write (.npz)")
    parser.add_argument("--model", help="also check that models.MODEL() loads it strictly "
                                        "(e.g. resnet18, vgg16, googlenet)")
    args = parser.parse_args(argv)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("convert_torchvision.py needs PyTorch to read .pth files, and it is not "
              "installed.\nInstall it for this script only: pip install torch "
              "--index-url https://download.pytorch.org/whl/cpu", file=sys.stderr)
        return 2

    arrays = read_torch_state_dict(args.input)
    # Tensors, as tg.save(model.state_dict(), path) would write them
    state = {name: tg.tensor(a) for name, a in arrays.items()}
    if args.model:
        import models

        net = getattr(models, args.model)()
        net.load_state_dict(state, strict=True)  # raises, naming keys/shapes, on a mismatch
        print(f"models.{args.model}() loads it with strict=True")
    tg.save(state, args.output)
    n = sum(int(a.size) for a in arrays.values())
    print(f"wrote {args.output}: {len(arrays)} tensors, {n:,} values")
    return 0


if __name__ == "__main__":
    sys.exit(main())
