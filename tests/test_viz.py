"""tg.viz.to_dot: the DOT text parses, and its nodes and edges are the backward graph.

Graphviz is not installed, so a tiny parser for the subset ``to_dot`` writes stands
in for it: every line is a graph header, a default, a node declaration or an edge,
the braces balance, and every edge joins declared nodes.
"""

from __future__ import annotations

import re

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import tensorgrad as tg

_STRING = r'"((?:[^"\\]|\\.)*)"'  # a DOT quoted string with escapes
_NODE = re.compile(r"^\s*(\w+)\s*\[label=" + _STRING + r"(?:,\s*[^\]]*)?\];$")
_EDGE = re.compile(r"^\s*(\w+)\s*->\s*(\w+);$")
_DEFAULT = re.compile(r"^\s*(node|edge|graph)\s*\[[^\]]*\];$")


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), s)


def parse_dot(text: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(labels by node id, edges as (src, dst) ids); fails on anything malformed."""
    lines = [ln for ln in text.strip("\n").split("\n") if ln.strip()]
    assert re.match(r"^digraph\s+\w*\s*\{$", lines[0]), lines[0]
    assert lines[-1].strip() == "}"
    outside_strings = re.sub(_STRING, '""', text)
    assert outside_strings.count("{") == outside_strings.count("}") == 1
    labels: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    for ln in lines[1:-1]:
        if m := _NODE.match(ln):
            assert m.group(1) not in labels, f"node {m.group(1)} declared twice"
            labels[m.group(1)] = _unescape(m.group(2))
        elif m := _EDGE.match(ln):
            edges.append((m.group(1), m.group(2)))
        else:
            assert _DEFAULT.match(ln), f"not a DOT statement: {ln!r}"
    for src, dst in edges:
        assert src in labels and dst in labels, f"edge {src} -> {dst} to an undeclared node"
    return labels, edges


def labelled_edges(text: str) -> list[tuple[str, str]]:
    labels, edges = parse_dot(text)
    return sorted((labels[a], labels[b]) for a, b in edges)


def test_linear_relu_graph_is_exactly_the_recorded_ops(device):
    x = tg.randn(2, 3, device=device)  # data: no gradient, not drawn
    w = tg.randn(3, 4, requires_grad=True, device=device)
    b = tg.randn(4, requires_grad=True, device=device)
    loss = (x @ w + b).relu().sum()
    dot = tg.viz.to_dot(loss, params={"weight": w, "bias": b})
    assert labelled_edges(dot) == sorted([
        ("weight\n(3, 4)", "MatMul\n(2, 4)"),
        ("MatMul\n(2, 4)", "Add\n(2, 4)"),
        ("bias\n(4,)", "Add\n(2, 4)"),
        ("Add\n(2, 4)", "ReLU\n(2, 4)"),
        ("ReLU\n(2, 4)", "Sum\n()"),
        ("Sum\n()", "output\n()"),
    ])


def test_leaves_without_params_are_labelled_by_shape(device):
    a = tg.randn(5, requires_grad=True, device=device)
    labels, _ = parse_dot(tg.viz.to_dot((a * a).sum()))
    assert sorted(labels.values()) == sorted(["leaf\n(5,)", "Mul\n(5,)", "Sum\n()", "output\n()"])


def test_shared_subgraph_is_drawn_once(device):
    # x feeds two ops whose results are added: a diamond, not a tree
    x = tg.randn(3, requires_grad=True, device=device)
    h = x.exp()
    y = (h * h + h.tanh()).sum()
    labels, edges = parse_dot(tg.viz.to_dot(y, params={"x": x}))
    assert list(labels.values()).count("Exp\n(3,)") == 1
    assert list(labels.values()).count("x\n(3,)") == 1
    exp_id = next(k for k, v in labels.items() if v.startswith("Exp"))
    consumers = sorted(labels[dst] for src, dst in edges if src == exp_id)
    assert consumers == ["Mul\n(3,)", "Mul\n(3,)", "Tanh\n(3,)"]  # h * h uses h twice


def test_deep_graph_needs_no_recursion(device):
    x = tg.ones(1, requires_grad=True, device=device)
    y = x
    for _ in range(5000):  # far deeper than Python's recursion limit
        y = y * 1.0
    labels, edges = parse_dot(tg.viz.to_dot(y))
    assert sum(v.startswith("Mul") for v in labels.values()) == 5000
    assert len(edges) == 5000 + 1  # leaf -> first Mul ... last Mul -> output


def test_a_leaf_alone_is_one_node(device):
    p = tg.zeros(2, 2, requires_grad=True, device=device)
    labels, edges = parse_dot(tg.viz.to_dot(p, params={"p": p}))
    assert list(labels.values()) == ["p\n(2, 2)"] and edges == []


def test_rejects_non_tensors():
    import pytest

    with pytest.raises(TypeError, match="Tensor"):
        tg.viz.to_dot(np.zeros(3))


@given(name=st.text(min_size=1, max_size=12))
def test_any_parameter_name_is_escaped(name, device):
    w = tg.randn(2, requires_grad=True, device=device)
    labels, _ = parse_dot(tg.viz.to_dot(w.sum(), params={name: w}))
    assert f"{name}\n(2,)" in labels.values()


def test_visualize_example_writes_the_basic_block_graph(tmp_path, capsys):
    import importlib.util
    import shutil
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "visualize.py"
    spec = importlib.util.spec_from_file_location("visualize_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = example.main(["--out", str(tmp_path / "block.svg"), "--channels", "4"])
    assert out.exists() and "wrote" in capsys.readouterr().out
    if shutil.which("dot"):
        assert out.suffix == ".svg" and "<svg" in out.read_text()
        return
    assert out.suffix == ".dot"
    labels, edges = parse_dot(out.read_text())
    names = {v.split("\n")[0] for v in labels.values()}
    assert {"conv1.weight", "conv2.weight", "bn1.weight", "bn2.bias",
            "downsample.0.weight", "Conv2d", "Add", "ReLU"} <= names
    add = next(k for k, v in labels.items() if v.startswith("Add"))
    assert len([src for src, dst in edges if dst == add]) == 2  # residual branch + shortcut
