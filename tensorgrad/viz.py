"""Draw the backward graph: ``to_dot(loss)`` returns it as Graphviz DOT text.

The graph drawn is exactly what ``loss.backward()`` will walk: one box per recorded
op (a ``Node``: the Function's name and the shape of what it produced), one box per
leaf that receives a gradient (a parameter's name when ``params`` is given, else its
shape), and an arrow from every input to the op that consumed it. Tensors that do
not require grad (data, constants) get no gradient and are left out, as in PyTorch's
torchviz.

Render it with Graphviz: ``dot -Tsvg graph.dot -o graph.svg`` (see
``examples/visualize.py``), or paste the text into any online Graphviz viewer.
"""

from __future__ import annotations

from collections.abc import Mapping

from .autograd import Node
from .tensor import Tensor


def _quote(text: str) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, newlines as ``\\n``."""
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def _shape(shape: tuple[int, ...]) -> str:
    return str(tuple(int(n) for n in shape))  # "(3, 4)", "(4,)", "()"


def to_dot(tensor: Tensor, params: Mapping[str, Tensor] | None = None) -> str:
    """Graphviz DOT text of the backward graph that produced ``tensor``.

    ``params`` maps names to tensors (e.g. ``dict(model.named_parameters())``); leaves
    found there are labelled with their names. The traversal is iterative, so graphs
    thousands of ops deep are fine.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dot expects a Tensor, got {type(tensor).__name__}")
    names = {id(t): name for name, t in (params or {}).items()}
    ids: dict[int, str] = {}  # id(node or leaf tensor) -> DOT node id
    lines = ["digraph backward {", '  node [shape=box, fontname="monospace", fontsize=10];']

    def declare(obj, label: str, style: str) -> str:
        ids[id(obj)] = f"n{len(ids)}"
        lines.append(f"  {ids[id(obj)]} [label={_quote(label)}, {style}];")
        return ids[id(obj)]

    def leaf_label(t: Tensor) -> str:
        name = names.get(id(t))
        return f"{name}\n{_shape(t.shape)}" if name else f"leaf\n{_shape(t.shape)}"

    root = tensor.grad_fn
    if root is None:  # a leaf: its graph is itself
        label = leaf_label(tensor) if tensor.requires_grad else f"tensor\n{_shape(tensor.shape)}"
        declare(tensor, label, 'style=filled, fillcolor="lightblue"')
        return "\n".join(lines + ["}"]) + "\n"

    out_id = declare(tensor, f"output\n{_shape(tensor.shape)}",
                     'style=filled, fillcolor="darkolivegreen1"')
    edges: list[str] = []
    stack: list[Node] = [root]
    declare(root, _op_label(root), 'style=filled, fillcolor="lightgrey"')
    edges.append(f"  {ids[id(root)]} -> {out_id};")
    while stack:  # explicit stack instead of recursion: the graph can be very deep
        node = stack.pop()
        for t in node.inputs:
            if not isinstance(t, Tensor) or not t.requires_grad:
                continue  # no gradient flows there
            child = t.grad_fn
            if child is None:  # a leaf
                if id(t) not in ids:
                    declare(t, leaf_label(t), 'style=filled, fillcolor="lightblue"')
                src = ids[id(t)]
            else:
                if id(child) not in ids:
                    declare(child, _op_label(child), 'style=filled, fillcolor="lightgrey"')
                    stack.append(child)
                src = ids[id(child)]
            edges.append(f"  {src} -> {ids[id(node)]};")
    lines.extend(edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _op_label(node: Node) -> str:
    shapes = ", ".join(_shape(shape) for shape, _ in node.outputs)
    return f"{node.name()}\n{shapes}"
