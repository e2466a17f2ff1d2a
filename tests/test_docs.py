"""docs/how-it-works.md cannot silently rot: every file, function and attribute it
names in backticks must exist in the code, and its code excerpts must still be there.

What a backticked token is checked against:

- ``path/to/file.py`` (or a folder ``path/``): the path exists in the repository;
- ``tg.x.y``, ``F.x``, ``nn.X``, ``models.x``: importing and looking the name up works;
- ``module.name`` with a tensorgrad/nn/models module stem (``autograd.observers``):
  ``name`` is defined in that module;
- ``Class.member``: a class of that name defines the member (method, class attribute,
  ``self.member`` assignment or ``__slots__`` entry);
- ``obj.member`` (an instance such as ``ctx`` or ``x``): some class defines the member;
- a bare ``name`` or ``name()``: a class, function, method, parameter, module-level or
  class-level name of that spelling is defined somewhere in the code.

Tokens that are not names (expressions, shapes, shell commands) are not checked.
Fenced code blocks are checked line by line when they are Python excerpts: every
non-blank line of a block marked ``python`` that contains no ``...`` elision must occur
in the code (whitespace-insensitive), unless the block is a usage example (it starts
with ``with``/``import``/``print`` or assigns from ``tg.``/``model``).
"""

from __future__ import annotations

import ast
import builtins
import importlib
import keyword
import re
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "how-it-works.md"
PACKAGES = ("tensorgrad", "nn", "models", "examples")
ALIASES = {"tg": "tensorgrad", "F": "tensorgrad.functional", "nn": "nn", "models": "models"}
NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(\(\))?$")
PATH = re.compile(r"^[\w.-]+(/[\w.-]+)*(\.(py|md|toml)|/)$")
WORDS_ALLOWED = {"numpy", "cupy", "xp", "dot", "pytest", "hypothesis", "torch", "torchvision"}


def _guide_text() -> str:
    return GUIDE.read_text(encoding="utf-8")


def _prose_and_code(text: str) -> tuple[str, list[tuple[str, str]]]:
    """(text outside fenced blocks, [(language, body) of each fenced block])."""
    blocks = [(m.group(1), m.group(2))
              for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)]
    prose = re.sub(r"^```\w*\n.*?^```", "", text, flags=re.S | re.M)
    return prose, blocks


def _backticked(prose: str) -> list[str]:
    return [t.strip() for t in re.findall(r"`([^`\n]+)`", prose)]


class _Index:
    """Every name the code defines, and the members of every class."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.members: dict[str, set[str]] = {}
        self.bases: dict[str, set[str]] = {}  # class -> names of its base classes
        self.modules: dict[str, set[str]] = {}  # module stem -> top-level names
        for pkg in PACKAGES:
            for path in sorted((ROOT / pkg).rglob("*.py")):
                self._add(path)

    def _add(self, path: Path) -> None:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = self.modules.setdefault(path.stem, set())
        for stmt in tree.body:
            top.update(_assigned(stmt))
        if path.stem == "__init__":
            self.modules.setdefault(path.parent.name, set()).update(top)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.names.add(node.name)
                if isinstance(node, ast.ClassDef):
                    self.members.setdefault(node.name, set()).update(_class_members(node))
                    self.bases.setdefault(node.name, set()).update(
                        b.id if isinstance(b, ast.Name) else b.attr for b in node.bases
                        if isinstance(b, (ast.Name, ast.Attribute)))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                for arg in a.posonlyargs + a.args + a.kwonlyargs:
                    self.names.add(arg.arg)
        for stmt in tree.body:
            self.names.update(_assigned(stmt))

    def has_member(self, cls: str, member: str) -> bool:
        """``cls`` or one of its base classes (by name) defines ``member``."""
        seen, todo = set(), [cls]
        while todo:
            c = todo.pop()
            if c in seen:
                continue
            seen.add(c)
            if member in self.members.get(c, ()):
                return True
            todo.extend(self.bases.get(c, ()))
        return False

    def any_member(self, member: str) -> bool:
        return any(member in m for m in self.members.values())


def _assigned(stmt: ast.stmt) -> set[str]:
    out: set[str] = set()
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        out.add(stmt.name)
    elif isinstance(stmt, ast.Assign):
        for t in stmt.targets:
            out.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
    elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        out.add(stmt.target.id)
    elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
        out.update((a.asname or a.name).split(".")[0] for a in stmt.names)
    return out


def _class_members(cls: ast.ClassDef) -> set[str]:
    out: set[str] = set()
    for stmt in cls.body:
        out.update(_assigned(stmt))
        if isinstance(stmt, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__slots__" for t in stmt.targets):
            out.update(c.value for c in ast.walk(stmt.value)
                       if isinstance(c, ast.Constant) and isinstance(c.value, str))
    for node in ast.walk(cls):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and \
                isinstance(node.value, ast.Name) and node.value.id in ("self", "ctx", "cls"):
            out.add(node.attr)
    return out


@cache
def _index() -> _Index:
    return _Index()


def _resolve_import(token: str) -> bool:
    head, *rest = token.split(".")
    try:
        obj = importlib.import_module(ALIASES[head])
    except ImportError:
        return False
    for part in rest:
        if not hasattr(obj, part):
            try:
                obj = importlib.import_module(f"{obj.__name__}.{part}")
                continue
            except (ImportError, AttributeError):
                return False
        obj = getattr(obj, part)
    return True


def _resolve_attr(obj, parts: list[str]) -> bool:
    for part in parts:
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return True


def check_name(token: str) -> str | None:
    """None when ``token`` names something that exists, else why not."""
    idx = _index()
    token = token.removesuffix("()")
    parts = token.split(".")
    head, last = parts[0], parts[-1]
    if len(parts) == 1:
        if token in idx.names or idx.any_member(token) or token in WORDS_ALLOWED \
                or keyword.iskeyword(token) or hasattr(builtins, token):
            return None
        return f"`{token}` is not defined anywhere in {', '.join(PACKAGES)}"
    if head in ALIASES:
        return None if _resolve_import(token) else f"`{token}` does not import"
    if head in ("np", "xp"):  # an array function: NumPy's name is CuPy's too
        return None if _resolve_attr(np, parts[1:]) else f"`{token}` is not in NumPy"
    if head in sys.stdlib_module_names:
        module = importlib.import_module(head)
        return None if _resolve_attr(module, parts[1:]) else f"`{token}` is not in {head}"
    if head in idx.members:
        return None if idx.has_member(head, last) else f"`{token}`: {head} has no {last}"
    if head in idx.modules and parts[1] in idx.modules[head]:
        return None
    # an instance (``ctx``, ``x``, ``grads``): some class, or a builtin container, has it
    if idx.any_member(last) or any(hasattr(t, last) for t in (dict, list, tuple, str, set)):
        return None
    return f"`{token}`: no module or class defines {last}"


def _tokens() -> list[str]:
    prose, _ = _prose_and_code(_guide_text())
    return _backticked(prose)


def test_the_guide_exists_and_names_many_things():
    tokens = _tokens()
    assert len([t for t in tokens if PATH.match(t)]) >= 10
    assert len([t for t in tokens if NAME.match(t)]) >= 50
    assert "LECTURE_MAP" not in _guide_text() and "OPTIM_SECTION" not in _guide_text()


def test_every_referenced_path_exists():
    missing = [t for t in _tokens() if PATH.match(t) and not (ROOT / t).exists()]
    # a file like "trace.json" the reader writes is not a repository path
    missing = [t for t in missing if "/" in t]
    assert not missing, f"docs reference files that do not exist: {missing}"


def test_every_referenced_name_exists():
    problems = [why for t in _tokens()
                if NAME.match(t) and not PATH.match(t) and (why := check_name(t))]
    assert not problems, "\n".join(problems)


def _normalise(line: str) -> str:
    return re.sub(r"\s+", "", line.split("  #")[0])


@cache
def _code_lines() -> set[str]:
    lines: set[str] = set()
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            lines.update(_normalise(ln) for ln in path.read_text(encoding="utf-8").splitlines())
    return lines


def _is_usage_example(body: str) -> bool:
    first = body.strip().splitlines()[0]
    return bool(re.match(r"(with |import |from |print\(|for |\w+ = (tg\.|model|nn\.|models\.))",
                         first))


def test_python_excerpts_are_still_in_the_code():
    _, blocks = _prose_and_code(_guide_text())
    excerpts = [b for lang, b in blocks if lang == "python" and not _is_usage_example(b)]
    assert len(excerpts) >= 5
    code = _code_lines()
    stale = [ln.strip() for b in excerpts for ln in b.splitlines()
             if ln.strip() and "..." not in ln and _normalise(ln) not in code]
    assert not stale, "excerpts no longer in the code:\n" + "\n".join(stale)


LECTURE_CONCEPTS = [
    "batch norm", "layer norm", "instance norm", "group norm", "local response",
    "AlexNet", "ZFNet", "VGG", "GoogLeNet", "Inception", "auxiliary", "ResNet",
    "bottleneck", "pre-activation", "plain", "per-layer table", "momentum", "RMSprop",
    "Adam", "dropout", "global average pooling", "fuse",
]


@pytest.mark.parametrize("concept", LECTURE_CONCEPTS)
def test_lecture_map_covers_the_concept(concept):
    text = _guide_text()
    lecture_map = text[text.index("## 9. Lecture map"):]
    assert concept.lower() in lecture_map.lower(), f"lecture map lacks {concept!r}"


@pytest.mark.parametrize("bad", ["no_such_function_xyz", "Tensor.no_such_member",
                                 "tg.viz.no_such", "autograd.no_such_name"])
def test_the_checker_rejects_names_that_do_not_exist(bad):
    assert check_name(bad) is not None


@pytest.mark.parametrize("good", ["topological_order", "Function.apply", "tg.viz.to_dot",
                                  "autograd.observers", "ctx.saved_tensors", "Node.trace"])
def test_the_checker_accepts_names_that_exist(good):
    assert check_name(good) is None
