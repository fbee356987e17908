"""The layers import one way. Between the repository's folders: rtser (the runtime) <- train <- sim
<- export <- bench. Inside rtser, each floor imports only the floors below it (``rtser/__init__``
draws the plan), the runtime never imports torch, and the pipeline knows no protocol or terminal."""

import ast

import pytest
from conftest import ROOT

BELOW = {
    "rtser": set(),
    "train": {"rtser"},
    "sim": {"rtser", "train"},
    "export": {"rtser", "train"},
    "bench": {"rtser", "train", "sim", "export"},
}
THIRD_PARTY_NEVER = {"rtser": {"torch", "transformers", "onnx", "train", "export", "bench", "sim"}}
RUNTIME_FLOORS = {  # a part of rtser -> the parts it may import
    "errors": set(),
    "audio": {"errors"},
    "bundle": {"errors"},
    "pipeline": {"errors", "audio", "bundle"},
    "report": {"errors", "pipeline"},
    "serve": {"errors", "audio", "bundle", "pipeline", "report"},
    "listen": {"errors", "pipeline", "report"},
    "enroll": {"errors", "audio", "bundle", "pipeline"},
    "batch": {"errors", "bundle", "pipeline", "report"},
    "cli": {"errors", "bundle", "pipeline", "report", "serve", "listen", "batch", "enroll"},
}
TERMINAL = {"click", "sys", "websockets"}  # the pipeline prints nothing and serves nothing


def imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def runtime_imports(path):
    """The parts of rtser that a module of rtser imports (relative or absolute)."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            target = (*base, *(node.module or "").split(".")) if node.module else base
            names = [(*target, a.name) for a in node.names] if len(target) == 1 else [target]
            for parts in names:
                if len(parts) > 1:
                    yield parts[1]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rtser."):
            yield node.module.split(".")[1]


def part_of(path):
    parts = path.relative_to(ROOT / "rtser").with_suffix("").parts
    return parts[0]


@pytest.mark.parametrize("layer", sorted(BELOW))
def test_a_layer_imports_only_the_layers_below_it(layer):
    allowed = BELOW[layer] | {layer}
    for path in (ROOT / layer).rglob("*.py"):
        found = {name.split(".")[0] for name in imports(path)}
        wrong = (found & set(BELOW)) - allowed
        assert not wrong, f"{path.relative_to(ROOT)} imports {wrong}"
        assert not found & THIRD_PARTY_NEVER.get(layer, set()), f"{path.relative_to(ROOT)}"


def test_each_part_of_the_runtime_imports_only_the_floors_below_it():
    for path in (ROOT / "rtser").rglob("*.py"):
        part = part_of(path)
        if part in ("__init__", "__main__"):
            continue
        wrong = set(runtime_imports(path)) - RUNTIME_FLOORS[part] - {part, "__version__"}
        assert not wrong, f"{path.relative_to(ROOT)} ({part}) imports {wrong}"


def test_the_pipeline_knows_no_protocol_or_terminal():
    for path in (ROOT / "rtser" / "pipeline").rglob("*.py"):
        found = {name.split(".")[0] for name in imports(path)}
        assert not found & TERMINAL, f"{path.relative_to(ROOT)} imports {found & TERMINAL}"
