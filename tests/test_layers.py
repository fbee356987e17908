"""The layers import one way: rtser (runtime) <- train <- export <- bench."""
import ast

import pytest

from conftest import ROOT

BELOW = {"rtser": set(), "train": {"rtser"}, "export": {"rtser", "train"}, "bench": {"rtser", "train", "export"}}
OURS = set(BELOW)
THIRD_PARTY_NEVER = {"rtser": {"torch", "transformers", "onnx"}}


def imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


@pytest.mark.parametrize("layer", sorted(BELOW))
def test_a_layer_imports_only_the_layers_below_it(layer):
    allowed = BELOW[layer] | {layer}
    for path in (ROOT / layer).rglob("*.py"):
        found = set(imports(path))
        assert not (found & OURS) - allowed, f"{path.relative_to(ROOT)} imports {(found & OURS) - allowed}"
        assert not found & THIRD_PARTY_NEVER.get(layer, set()), f"{path.relative_to(ROOT)}"
