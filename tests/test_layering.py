"""The package's layering, checked from the source: no import cycle, no function-level imports of our own
modules, every import pointing down the layers, and every module of the package in exactly one named layer

    errors <- io helpers (fileio, inputs, prompts, remote_code, engine, similarity, maxsim, quantization, util,
    defaults, corpus, shards) <- registry <- modules <- backends <- persistence <- stack / encode_io / chunking / cache
    <- base / encode_paths <- encoding / model / evaluation / cross_encoder / sparse_encoder <- kinds / losses
    <- cli / server / ray / training <- the package's lazy __init__

A new package or top-level module must be added to LAYERS (the root package matches only itself, so nothing
lands in a layer by default).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "embedstack"
ROOT = "embedstack"

# Lowest first; a module may import modules of its own layer or of lower ones. Each entry names a top-level
# module or package of embedstack (its submodules included); ROOT matches the package's __init__ alone.
LAYERS: list[tuple[str, ...]] = [
    ("embedstack._version", "embedstack.errors"),
    (
        "embedstack.fileio",
        "embedstack.inputs",
        "embedstack.prompts",
        "embedstack.remote_code",
        "embedstack.engine",
        "embedstack.similarity",
        "embedstack.maxsim",
        "embedstack.quantization",
        "embedstack.util",
        "embedstack.defaults",
        "embedstack.corpus",
        "embedstack.shards",
        "embedstack.extras",
    ),
    ("embedstack.registry",),
    ("embedstack.modules",),
    ("embedstack.backends",),
    ("embedstack.persistence",),
    ("embedstack.stack", "embedstack.encode_io", "embedstack.chunking", "embedstack.cache"),
    ("embedstack.base", "embedstack.encode_paths"),
    (
        "embedstack.encoding",
        "embedstack.model",
        "embedstack.evaluation",
        "embedstack.cross_encoder",
        "embedstack.sparse_encoder",
    ),
    ("embedstack.kinds", "embedstack.losses"),
    ("embedstack.cli", "embedstack.server", "embedstack.ray", "embedstack.training", "embedstack.training_args"),
    (ROOT,),
]
# Optional extras may be imported inside functions (they are not ours); nothing else of ours may.
OPTIONAL_SUBPACKAGES: tuple[str, ...] = ("embedstack.training",)  # the train extra, imported by model.fit


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of_entry(name: str, entry: str) -> bool:
    """Whether LAYERS' ``entry`` holds module ``name`` (the root entry holds only the root)."""
    return name == entry or (entry != ROOT and name.startswith(entry + "."))


def layer_of(name: str, layers: list[tuple[str, ...]] = LAYERS) -> int:
    """The layer of module ``name``; an AssertionError when no entry of ``layers`` holds it."""
    found = [index for index, entries in enumerate(layers) for entry in entries if layer_of_entry(name, entry)]
    assert len(found) == 1, f"{name} is in {len(found)} layers; add it to exactly one in LAYERS"
    return found[0]


def resolve(node: ast.ImportFrom | ast.Import, current: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = current.split(".")
        if not is_package:
            parts = parts[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join([*parts, base] if base else parts)
    names = [base]
    names += [f"{base}.{alias.name}" for alias in node.names]  # `from pkg import submodule`
    return names


def scan() -> tuple[dict[str, set[str]], list[str]]:
    """The module-level import graph among our modules, and every function-level import of one of them."""
    files = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    inner: list[str] = []
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        is_package = path.name == "__init__.py"
        top_level = set()
        for node in tree.body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            for child in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) else []:
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    top_level.add(id(child))
                    graph[name] |= {target for target in resolve(child, name, is_package) if target in files}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top_level:
                ours = [t for t in resolve(node, name, is_package) if t.split(".")[0] == "embedstack"]
                ours = [t for t in ours if not t.startswith(OPTIONAL_SUBPACKAGES or ("\0",))]
                if ours and not _in_type_checking(tree, node):
                    inner.append(f"{name}:{node.lineno} imports {ours[0]}")
    return graph, inner


def _in_type_checking(tree: ast.Module, target: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            if any(child is target for child in ast.walk(node)):
                return True
    return False


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if target == node:
                continue
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle():
    graph, _ = scan()
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_function_level_imports_of_our_modules():
    _, inner = scan()
    assert inner == []


def test_imports_point_down_the_layers():
    graph, _ = scan()
    upward = [
        f"{source} (layer {layer_of(source)}) imports {target} (layer {layer_of(target)})"
        for source, targets in graph.items()
        for target in targets
        if layer_of(target) > layer_of(source) and not source.startswith(target + ".")
    ]
    assert upward == []


@pytest.mark.parametrize(
    "graph, expected",
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ],
)
def test_the_cycle_finder_finds_cycles(graph, expected):
    assert find_cycle(graph) == expected


def test_every_module_is_in_exactly_one_layer():
    graph, _ = scan()
    for name in graph:
        layer_of(name)  # raises for a module no entry holds


def test_every_layer_entry_names_something_that_exists():
    graph, _ = scan()
    missing = [entry for entries in LAYERS for entry in entries if not any(layer_of_entry(n, entry) for n in graph)]
    assert missing == []


def test_a_new_unlisted_package_is_in_no_layer():
    # The test of the test: the root entry must not swallow a new package, so its assert fires.
    with pytest.raises(AssertionError, match="embedstack.newkind is in 0 layers"):
        layer_of("embedstack.newkind")
    with pytest.raises(AssertionError, match="embedstack.newkind.model is in 0 layers"):
        layer_of("embedstack.newkind.model")
    assert layer_of("embedstack") == len(LAYERS) - 1
    assert layer_of("embedstack.server.app") == layer_of("embedstack.cli")
