"""Write torchvision's state_dict layouts as JSON: ``{name: shape}`` per model.

``tests/test_models.py`` compares every torchvision-compatible model of ``models/``
against these files, key by key and shape by shape, without needing PyTorch. Run this
script where torchvision is installed to regenerate them:

    python tests/torchvision_layouts/generate.py [OUT_DIR]

The files in the repository were written from torchvision's model source (alexnet.py,
vgg.py, googlenet.py, resnet.py); the parameter counts in the test are torchvision's
published ones, so a layout that drifted from torchvision would fail there too.
Buffers are included (BatchNorm's ``running_mean``, ``running_var`` and the 0-d
``num_batches_tracked``), because ``load_state_dict(strict=True)`` checks them as well.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent

# file name -> (torchvision constructor name, keyword arguments)
MODELS: dict[str, tuple[str, dict]] = {
    "alexnet": ("alexnet", {}),
    **{f"vgg{d}": (f"vgg{d}", {}) for d in (11, 13, 16, 19)},
    **{f"vgg{d}_bn": (f"vgg{d}_bn", {}) for d in (11, 13, 16, 19)},
    "googlenet": ("googlenet", {"aux_logits": True, "init_weights": False}),
    "googlenet_noaux": ("googlenet", {"aux_logits": False, "init_weights": False}),
    **{f"resnet{d}": (f"resnet{d}", {}) for d in (18, 34, 50, 101, 152)},
}


def write_layout(path: Path, layout: Mapping[str, Sequence[int]]) -> None:
    """One ``"name": [shape]`` per line, in state_dict order (diff-friendly)."""
    lines = [f"  {json.dumps(name)}: {json.dumps(list(shape))}" for name, shape in layout.items()]
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n")


def read_layout(path: Path) -> dict[str, tuple[int, ...]]:
    return {name: tuple(shape) for name, shape in json.loads(path.read_text()).items()}


def main(out_dir: Path) -> int:
    try:
        import torchvision.models as tvm
    except ImportError:
        print("generate.py needs torchvision (pip install torch torchvision)", file=sys.stderr)
        return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    for file_name, (ctor, kwargs) in MODELS.items():
        model = getattr(tvm, ctor)(weights=None, **kwargs)
        layout = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        write_layout(out_dir / f"{file_name}.json", layout)
        n_params = sum(p.numel() for p in model.parameters())
        print(f"{file_name:16s} {len(layout):4d} entries {n_params:12,d} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE))
