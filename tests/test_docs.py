"""The documentation cannot silently rot.

docs/how-it-works.md and docs/lecture.md: every file, function and attribute they name
in backticks must exist in the code, and the guide's code excerpts must still be there.
README.md, every Markdown file of docs/ and benchmarks/, and the docstrings and comments
of every package, example, benchmark and test: every repository path they mention
(``docs/lecture.md``, ``tensorgrad/ops/conv.py``, ``examples/``) exists, and none cites the
private design notes the project was built from, which are not in the repository.
docs/differences-from-pytorch.md gives each difference its reason and the PyTorch
idiom to use instead, and docs/lecture.md's AlexNet table is what ``nn.summary`` prints.

What a backticked token is checked against:

- ``path/to/file.py`` (or a folder ``path/``): the path exists in the repository;
- ``tg.x.y``, ``F.x``, ``nn.X``, ``models.x``: importing and looking the name up works;
- ``module.name`` with the stem of a module of tensorgrad, nn or models
  (``autograd.observers``):
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
import io
import keyword
import os
import re
import sys
import tokenize
from functools import cache
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.cpu_only  # about files, not devices

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "how-it-works.md"
LECTURE_DOC = ROOT / "docs" / "lecture.md"
DIFFERENCES = ROOT / "docs" / "differences-from-pytorch.md"
NAME_CHECKED_DOCS = [GUIDE, LECTURE_DOC]  # every backticked name in these must exist
PACKAGES = ("tensorgrad", "nn", "models", "examples")
ALIASES = {"tg": "tensorgrad", "F": "tensorgrad.functional", "nn": "nn", "models": "models"}
NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(\(\))?$")
PATH = re.compile(r"^[\w.-]+(/[\w.-]+)*(\.(py|md|toml)|/)$")
# names of other libraries and tools that the guide mentions (MPI's and NCCL's calls too)
WORDS_ALLOWED = {"numpy", "cupy", "xp", "dot", "pytest", "hypothesis", "torch", "torchvision",
                 "mpi4py", "Allreduce", "ncclAllReduce", "MPI_Abort"}


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


def _tokens(doc: Path = GUIDE) -> list[str]:
    prose, _ = _prose_and_code(doc.read_text(encoding="utf-8"))
    return _backticked(prose)


def test_the_guide_exists_and_names_many_things():
    tokens = _tokens()
    assert len([t for t in tokens if PATH.match(t)]) >= 10
    assert len([t for t in tokens if NAME.match(t)]) >= 50
    assert "LECTURE_MAP" not in _guide_text() and "OPTIM_SECTION" not in _guide_text()


@pytest.mark.parametrize("doc", NAME_CHECKED_DOCS, ids=lambda p: p.name)
def test_every_referenced_path_exists(doc):
    missing = [t for t in _tokens(doc) if PATH.match(t) and not (ROOT / t).exists()]
    # a file like "trace.json" the reader writes is not a repository path
    missing = [t for t in missing if "/" in t]
    assert not missing, f"docs reference files that do not exist: {missing}"


@pytest.mark.parametrize("doc", NAME_CHECKED_DOCS, ids=lambda p: p.name)
def test_every_referenced_name_exists(doc):
    problems = [why for t in _tokens(doc)
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


# ---------------------------------------------- repository paths in every document
# A reference to a repository path starts with one of the repository's top-level
# folders (``docs/lecture.md``, ``tensorgrad/ops/``), or is a bare upper-case Markdown
# name (``README.md``), the convention for a project's own documents. Paths inside URLs,
# home folders (``~/data/...``) and other folders (``runs/...``, which the examples
# write), and lower-case bare names (``summary.md``, ``script.py``: files a program
# writes or a user has), are not repository paths.
REPO_TOP = ("tensorgrad", "nn", "models", "tests", "examples", "benchmarks", "docs", ".ci")
_NOT_AFTER = r"(?<![\w/.~:-])"
_REF_PATH = re.compile(_NOT_AFTER + r"((?:" + "|".join(map(re.escape, REPO_TOP)) + r")/[\w./-]*)")
_REF_FILE = re.compile(_NOT_AFTER + r"([A-Z][A-Z0-9_-]*\.md)(?![\w/])")
NOT_IN_REPOSITORY = {".git", ".venv", ".hypothesis", ".pytest_cache", ".ruff_cache",
                     "__pycache__", "tensorgrad.egg-info", "runs"}
# The design notes the project was written from are not shipped: citing them sends a
# reader to a file they cannot open.
PRIVATE_NOTES = re.compile(r"(?<![\w/.-])(?:SPEC|LECTURE|STYLE)(?:\.md\b|\s*§)")


def referenced_paths(text: str) -> list[str]:
    """The repository paths ``text`` mentions, in order: folder paths, then bare names."""
    paths = [m.group(1).rstrip(".,;:") for m in _REF_PATH.finditer(text)]
    return paths + [m.group(1) for m in _REF_FILE.finditer(text)]


@cache
def _repository_file_names() -> frozenset[str]:
    names = set()
    for _, subfolders, files in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if d not in NOT_IN_REPOSITORY]  # not .venv
        names.update(files)
    return frozenset(names)


def missing_paths(text: str) -> list[str]:
    """The paths of ``referenced_paths(text)`` that do not exist: a path with a folder
    relative to the repository root, a bare name anywhere in the repository."""
    names = _repository_file_names()
    return [ref for ref in referenced_paths(text)
            if not ((ROOT / ref).exists() if "/" in ref else ref in names)]


def _documents() -> list[Path]:
    """README, the Markdown of docs/ and benchmarks/, and every Python file of the
    packages, examples, benchmarks and tests."""
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
            *sorted((ROOT / "benchmarks").glob("*.md"))]
    for folder in ("tensorgrad", "nn", "models", "examples", "benchmarks", "tests"):
        docs += sorted(p for p in (ROOT / folder).rglob("*.py")
                       if not NOT_IN_REPOSITORY & set(p.relative_to(ROOT).parts))
    return docs


@cache
def _prose(path: Path) -> str:
    """What a reader reads: a Markdown file whole; of a Python file, its docstrings and
    comments (string literals in code are data, e.g. the examples in the tests below)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".py":
        return text
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    parts = [t.string for t in tokens if t.type == tokenize.COMMENT]
    code = [t for t in tokens if t.type not in (tokenize.COMMENT, tokenize.NL)]
    starts = (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)
    # a docstring is a string that is a whole statement (tokens are ~2x faster than ast)
    parts += [t.string for i, t in enumerate(code[:-1]) if t.type == tokenize.STRING
              and (i == 0 or code[i - 1].type in starts) and code[i + 1].type == tokenize.NEWLINE]
    return "\n".join(parts)


def test_every_repository_path_in_docs_and_docstrings_exists():
    documents = _documents()
    assert len(documents) >= 50 and ROOT / "README.md" in documents
    problems = [f"{doc.relative_to(ROOT)}: {ref}"
                for doc in documents for ref in missing_paths(_prose(doc))]
    assert not problems, "references to files that are not in the repository:\n" + \
        "\n".join(problems)


def test_no_document_cites_the_design_notes_that_are_not_shipped():
    problems = [f"{doc.relative_to(ROOT)}: {m.group(0)!r}"
                for doc in _documents() for m in PRIVATE_NOTES.finditer(_prose(doc))]
    assert not problems, "\n".join(problems)


def test_the_path_checker_finds_references_and_flags_the_missing_ones():
    text = ("See `docs/how-it-works.md`, tensorgrad/ops/conv.py:57 and [a page](docs/no-page.md);\n"
            "examples/train.py writes runs/resnet20-digits/, not nn/optim/ (a folder). URLs\n"
            "(https://github.com/pytorch/vision/models/x.py) and ~/data/tensorgrad/y.py are\n"
            "not repository paths, nor is summary.md (a run's output); NO_SUCH_NOTES.md is,\n"
            "and README.md exists.")
    assert referenced_paths(text) == [
        "docs/how-it-works.md", "tensorgrad/ops/conv.py", "docs/no-page.md",
        "examples/train.py", "nn/optim/", "NO_SUCH_NOTES.md", "README.md"]
    assert missing_paths(text) == ["docs/no-page.md", "NO_SUCH_NOTES.md"]
    assert missing_paths("models/resnet.py. And tests/test_docs.py, docs/.") == []


@pytest.mark.parametrize("text, cites", [
    ("as SPEC §4 says", True), ("see LECTURE.md", True), ("(STYLE.md, naming)", True),
    ("SPEC§7", True), ("the lecture's AlexNet table", False), ("LECTURE_CONCEPTS", False),
    ("docs/lecture.md", False),
    ("spec = importlib.util.spec_from_file_location(name, path)", False),
    ("He et al. 2016 §4.2", False),
])
def test_the_citation_check_recognises_the_design_notes(text, cites):
    assert bool(PRIVATE_NOTES.search(text)) is cites


def test_readme_points_to_the_shipped_docs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for doc in ("docs/how-it-works.md", "docs/lecture.md", "docs/differences-from-pytorch.md"):
        assert doc in readme, doc


# ------------------------------------------------ docs/differences-from-pytorch.md
def _difference_entries() -> dict[str, str]:
    """Title -> text of every ``###`` entry."""
    parts = re.split(r"^### (.+)$", DIFFERENCES.read_text(encoding="utf-8"), flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def test_every_difference_gives_its_reason_and_the_idiom_to_use_instead():
    entries = _difference_entries()
    assert len(entries) >= 25
    lacking = [title for title, body in entries.items()
               if not all(k in body for k in ("**PyTorch", "**tensorgrad:**", "**Why:**",
                                              "**Instead:**"))]
    assert not lacking, f"entries without PyTorch/tensorgrad/Why/Instead: {lacking}"


# The deliberate differences recorded when they were decided; each must be documented.
DIFFERENCE_TOPICS = [
    "`.data`", "NumPy dtypes", "`tg.tensor([np.float64(1.5)])`", "`.numpy()`", "`// 0`",
    "int8", "`view`", "`ctx.saved_tensors`", "second backward", "detect_anomaly",
    "`gradcheck`", "NaN", "CopySlices", "`inplace=True`", "`ValueError`",
    "`load_state_dict`", "twice in one parameter group", "`mse_loss`", "`foreach`", "padding_mode",
    "`F.cross_entropy(input, target,", "`tg.manual_seed", "`DataLoader(dataset",
    "`TensorDataset`", "`download`", "`.npz`", "`nn.Parameter`", "twice",
    "`.pt`", "transform_input", "ZFNet", "create_graph",
]


@pytest.mark.parametrize("topic", DIFFERENCE_TOPICS)
def test_the_differences_cover_the_topic(topic):
    assert topic in DIFFERENCES.read_text(encoding="utf-8"), f"no entry mentions {topic}"


def test_the_differences_name_only_tensorgrad_names_that_exist():
    tokens = [t for t in _tokens(DIFFERENCES) if NAME.match(t) and t.split(".")[0] in ALIASES]
    assert len(tokens) >= 20
    problems = [why for t in tokens if (why := check_name(t))]
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ docs/lecture.md
def test_the_lecture_doc_alexnet_table_is_what_nn_summary_prints():
    import models
    import nn

    rows = {r["name"]: r for r in nn.summary(models.alexnet(), (3, 227, 227)).rows}
    table = re.findall(r"^\| (\w+) \| `([\w.]+)` \| ([\d×]+) \| ([\d.]+) \| ([\d.,]+) \| "
                       r"([\d.]+) \|$", LECTURE_DOC.read_text(encoding="utf-8"), flags=re.M)
    assert [slide for slide, *_ in table] == [
        "conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5", "flatten",
        "fc6", "fc7", "fc8"]

    def close(printed: str, value: float) -> bool:  # equal to the printed precision
        printed = printed.replace(",", "")
        decimals = len(printed.partition(".")[2])
        return abs(float(printed) - value) <= 0.5 * 10.0**-decimals + 1e-9

    for slide, name, shape, memory, params, mflop in table:
        row = rows[name]
        assert shape == "×".join(map(str, row["output_shape"])), slide
        assert close(memory, row["memory_kb"]), (slide, memory, row["memory_kb"])
        assert close(params, row["params"] / 1e3), (slide, params, row["params"])
        assert close(mflop, row["flops"] / 1e6), (slide, mflop, row["flops"])
