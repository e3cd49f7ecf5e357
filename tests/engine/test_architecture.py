"""The rooms of ``gradcheck/`` and who may import whom, read from the source by path.

The engine, the diagnosis, the results and the adapters import only the standard library,
NumPy and each other: a user who checks their own layer never imports SymPy, the zoo
(``gradcheck.models``) or the reports (``gradcheck.reference``).
"""

import ast
import sys
from pathlib import Path

import pytest

import gradcheck

PACKAGE = Path(gradcheck.__file__).parent

#: room -> the first-party rooms it may import (besides itself).
MAY_IMPORT = {
    "engine": {"engine", "diagnosis", "results"},
    "diagnosis": {"diagnosis"},
    "results": {"results", "diagnosis"},
    "adapters": {"adapters", "engine", "diagnosis", "results"},
}
THIRD_PARTY = {"numpy"}
#: Allowed only inside ``if TYPE_CHECKING:`` (never imported when the code runs).
TYPING_ONLY = {"typing_extensions"}
#: Optional heavy libraries, each allowed in its own adapter module only (imported lazily:
#: ``gradcheck.torch`` / ``gradcheck.jax`` load these modules on first use).
OPTIONAL = {"adapters/torch_adapter.py": {"torch"}, "adapters/jax_adapter.py": {"jax"},
            "adapters/shipping.py": {"cloudpickle"},
            "adapters/array_api_adapter.py": {"array_api_compat"}}


def _typing_only_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes inside an ``if TYPE_CHECKING:`` block."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and \
                node.test.id == "TYPE_CHECKING":
            inside |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return inside


def _imports(path: Path) -> list[str]:
    """The modules ``path`` imports when it runs (``TYPING_ONLY`` ones under TYPE_CHECKING
    are left out; anywhere else they count)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    typing_only = _typing_only_nodes(tree)
    names: list[str] = []
    for node in ast.walk(tree):
        if id(node) in typing_only and isinstance(node, (ast.Import, ast.ImportFrom)) and \
                (node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                 ) in TYPING_ONLY:
            continue
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def _modules(room: str) -> list[Path]:
    return sorted((PACKAGE / room).glob("*.py"))


@pytest.mark.parametrize("room", sorted(MAY_IMPORT))
def test_room_imports_only_the_standard_library_numpy_and_allowed_rooms(room):
    assert _modules(room), f"gradcheck/{room}/ holds no modules"
    for path in _modules(room):
        for name in _imports(path):
            top, _, rest = name.partition(".")
            if top == "gradcheck":
                sub = rest.partition(".")[0]
                assert sub in MAY_IMPORT[room], f"{path.name} imports {name}"
            else:
                allowed = THIRD_PARTY | OPTIONAL.get(f"{room}/{path.name}", set())
                assert top in sys.stdlib_module_names or top in allowed, (
                    f"{path.name} imports {name}")


def test_every_module_lives_in_a_room():
    loose = {p.name for p in PACKAGE.glob("*.py")}
    assert loose <= {"__init__.py", "__main__.py", "strategies.py", "torch.py", "jax.py",
                     "array_api.py"}, loose


@pytest.mark.parametrize("public", ["torch.py", "jax.py", "array_api.py"])
def test_public_framework_modules_import_no_framework_at_module_level(public):
    """``gradcheck/torch.py`` is thin: absolute, lazy imports of its adapter only (through
    :func:`gradcheck.ways_in.lazy.lazy_exports`, which imports the standard library only)."""
    tree = ast.parse((PACKAGE / public).read_text())
    top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = [a.name for n in top_level if isinstance(n, ast.Import) for a in n.names]
    names += [n.module for n in top_level if isinstance(n, ast.ImportFrom)]
    assert set(names) <= {"__future__", "typing", "gradcheck.ways_in.lazy"}, names
    assert all(n.level == 0 for n in top_level if isinstance(n, ast.ImportFrom))
