"""Print the lecture's architecture tables, computed by ``nn.summary``, beside the slides.

    python examples/lecture_tables.py                   # all tables (a minute or two on a CPU)
    python examples/lecture_tables.py alexnet googlenet # some of them

Conventions (as the lecture): memory = output elements × 4 bytes / 1024 (KB, one
image), params = weights + biases, flop = multiply-adds. Each table shows our number
next to the slide's; where they differ the notes say why (the slides have a few slips,
and torchvision's ResNet-50/101/152 move a stride).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

import models  # noqa: E402
import nn  # noqa: E402

# --- the slides' figures --------------------------------------------------------------
# AlexNet at 227×227: our layer -> (lecture name, memory KB, params k, MFLOP)
ALEXNET_SLIDE = {
    "features.0": ("conv1", 784, 23, 73),
    "features.2": ("pool1", 182, 0, 0),
    "features.3": ("conv2", 547, 307, 224),
    "features.5": ("pool2", 127, 0, 0),
    "features.6": ("conv3", 254, 664, 112),
    "features.8": ("conv4", 169, 885, 145),   # by the slide's own formula: 149.5
    "features.10": ("conv5", 169, 590, 100),
    "features.12": ("pool5", 36, 0, 0),
    "flatten": ("flatten", 36, 0, 0),
    "classifier.1": ("fc6", 16, 37_749, 38),  # params in·out + out: 37,752.8 k
    "classifier.4": ("fc7", 16, 16_777, 17),
    "classifier.6": ("fc8", 4, 4_096, 4),
}
# GoogLeNet's stem at 224×224: our layer -> (lecture name, memory KB, params k, MFLOP)
GOOGLENET_STEM_SLIDE = {
    "conv1.conv": ("conv 7×7/2", 3136, 9, 118),
    "maxpool1": ("max-pool 3×3/2", 784, 0, 2),
    "conv2.conv": ("conv 1×1", 784, 4, 13),
    "conv3.conv": ("conv 3×3", 2352, 111, 347),
    "maxpool2": ("max-pool 3×3/2", 588, 0, 1),
}
# model -> (block, blocks per stage, GFLOP on the slide, top-5 error %)
RESNET_SLIDE = {
    "resnet18": ("basic", (2, 2, 2, 2), 1.8, 10.92),
    "resnet34": ("basic", (3, 4, 6, 3), 3.6, 8.58),
    "resnet50": ("bottleneck", (3, 4, 6, 3), 3.8, 7.13),
    "resnet101": ("bottleneck", (3, 4, 23, 3), 7.6, 6.44),
    "resnet152": ("bottleneck", (3, 8, 36, 3), 11.3, 5.94),
}
# the slides' memory totals count the conv and FC outputs (ReLU works in place)
COUNTED = ("Conv2d", "Linear")


def _rows_by_name(summary) -> dict[str, dict]:
    return {row["name"]: row for row in summary.rows}


def _layer_table(title: str, summary, slide: dict) -> str:
    rows = _rows_by_name(summary)
    lines = [title,
             f"{'layer':15s} {'out C/H/W':>12s} {'memory KB':>17s} {'params k':>21s} "
             f"{'MFLOP':>17s}",
             f"{'':15s} {'':>12s} {'ours':>9s} {'slide':>7s} {'ours':>11s} {'slide':>9s} "
             f"{'ours':>9s} {'slide':>7s}"]
    for name, (label, mem, params, mflop) in slide.items():
        r = rows[name]
        shape = "/".join(str(d) for d in r["output_shape"])
        lines.append(f"{label:15s} {shape:>12s} {r['memory_kb']:9.1f} {mem:7d} "
                     f"{r['params'] / 1e3:11,.1f} {params:9,d} {r['flops'] / 1e6:9.1f} {mflop:7d}")
    return "\n".join(lines)


def alexnet_table() -> str:
    s = nn.summary(models.alexnet(), (3, 227, 227))
    counted_mb = sum(r["memory_kb"] for r in s.rows if r["type"] in COUNTED) / 1024
    notes = [
        "",
        f"totals: {s.total_params / 1e6:.1f} M params (slide 61 M), "
        f"{s.total_flops / 1e9:.2f} GFLOP (slide 0.7),",
        f"        {counted_mb:.1f} MB of conv + FC outputs (slide 1.9 MB).",
        "notes: conv4 is 256·13²·384·9 = 149.5 MFLOP by the slide's own formula (its 145 is",
        "a slip); the slide's fc params omit the biases (in·out + out = 37,752.8 k for fc6).",
        "Nearly all parameters sit in the FC layers, most FLOPs in the convs, most memory",
        "in the early convs.",
    ]
    return _layer_table("AlexNet at 3×227×227", s, ALEXNET_SLIDE) + "\n".join(notes)


def vgg16_table() -> str:
    s = nn.summary(models.vgg16(), (3, 224, 224))
    alex = nn.summary(models.alexnet(), (3, 227, 227))
    mem_mb = sum(r["memory_kb"] for r in s.rows if r["type"] in COUNTED) / 1024
    alex_mb = sum(r["memory_kb"] for r in alex.rows if r["type"] in COUNTED) / 1024
    return "\n".join([
        "VGG-16 at 3×224×224           ours      slide",
        f"  params (M)              {s.total_params / 1e6:8.1f}   {138:8.1f}",
        f"  GFLOP                   {s.total_flops / 1e9:8.1f}   {13.6:8.1f}",
        f"  memory (MB)             {mem_mb:8.1f}   {48.6:8.1f}",
        f"  vs AlexNet: params ×{s.total_params / alex.total_params:.1f} (slide 2.3), "
        f"FLOPs ×{s.total_flops / alex.total_flops:.1f} (slide 19.4), "
        f"memory ×{mem_mb / alex_mb:.0f} (slide 25)",
        "notes: counted as multiply-adds VGG-16 is 15.5 GFLOP (the usual figure); the slide's",
        "13.6 is lower, and its 48.6 MB below the conv + FC outputs counted as for AlexNet.",
        "fc6 alone holds 102.8 M of the 138 M parameters.",
    ])


def googlenet_table() -> str:
    s = nn.summary(models.googlenet(aux_logits=False), (3, 224, 224))
    rows = _rows_by_name(s)
    stem = [rows[name] for name in GOOGLENET_STEM_SLIDE]
    mem = sum(r["memory_kb"] for r in stem) / 1024
    params = sum(r["params"] for r in stem) / 1e3
    mflop = sum(r["flops"] for r in stem) / 1e6
    fc = rows["fc"]
    notes = [
        "",
        f"stem totals: {mem:.1f} MB (slide 7.5), {params:.0f} K params (slide 124), "
        f"{mflop:.0f} MFLOP",
        "             (slide 418; its own rows add up to about 481).",
        "notes: params are the convs' (torchvision's BN after each conv adds 2 per channel).",
        f"The head: global average pool, then FC 1024→1000 = {fc['params'] / 1e3:.0f} K params",
        "(slide 1025 K), against VGG-16's fc6 with 102,760 K.",
        f"whole net: {s.total_params / 1e6:.1f} M params, {s.total_flops / 1e9:.2f} GFLOP.",
    ]
    return _layer_table("GoogLeNet stem at 3×224×224", s, GOOGLENET_STEM_SLIDE) + "\n".join(notes)


def resnet_table() -> str:
    lines = ["ResNet family at 3×224×224",
             f"{'model':10s} {'block':10s} {'stages':14s} {'params M':>9s} "
             f"{'GFLOP':>6s} {'slide':>6s} {'top-5 %':>8s}"]
    for name, (block, stages, gflop, top5) in RESNET_SLIDE.items():
        s = nn.summary(getattr(models, name)(), (3, 224, 224))
        lines.append(f"{name:10s} {block:10s} {str(stages):14s} {s.total_params / 1e6:9.1f} "
                     f"{s.total_flops / 1e9:6.2f} {gflop:6.1f} {top5:8.2f}")
    lines += [
        "note: ResNet-50/101/152 come out slightly above the slide's 3.8/7.6/11.3 GFLOP",
        "because these are torchvision's v1.5 nets: a bottleneck's stride-2 sits on its 3×3",
        "conv instead of the first 1×1 (as in the paper), so that 3×3 runs at full resolution.",
    ]
    return "\n".join(lines)


TABLES = {"alexnet": alexnet_table, "vgg16": vgg16_table, "googlenet": googlenet_table,
          "resnet": resnet_table}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tables", nargs="*", metavar="TABLE",
                        help=f"any of {', '.join(TABLES)} (default: all)")
    args = parser.parse_args(argv)
    unknown = [t for t in args.tables if t not in TABLES]
    if unknown:
        parser.error(f"unknown table(s) {', '.join(unknown)}: choose from {', '.join(TABLES)}")
    for name in args.tables or TABLES:
        print(TABLES[name]())
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
