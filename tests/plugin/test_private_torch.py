"""PyTorch's private APIs are named in one module of the plugin, `engine/torchapi.py`.

Every other module of `pytest_gptcfg` is parsed (`ast`) and fails on an import of a private
torch module or name (`torch._dynamo`, `torch.utils._pytree`, `from torch import _C`), or on an
underscored attribute the package does not define itself, read or passed as a string to
`getattr`/`hasattr` (`torch._C`, `torch.cuda.memory._snapshot`, `storage._cdata`,
`getattr(op, "_schema")`). Names of aten ops (`torch.ops.aten._softmax`) are the dispatcher's
operator names, not Python APIs, and CPython's own (`sys._getframe`) are not torch's.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import pytest_gptcfg  # noqa: E402

PACKAGE = Path(pytest_gptcfg.__file__).resolve().parent
ALLOWED = PACKAGE / "engine" / "torchapi.py"
PYTHON_PRIVATE = {("sys", "_getframe"), ("os", "_exit")}
"""(module, name) pairs of the standard library's underscored names the package uses."""


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _defined(trees: list[ast.Module]) -> set[str]:
    """The names the package defines: functions, classes, assigned names and attributes,
    parameters (so its own underscored names pass)."""
    names: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return names


def _aten_op(name: str) -> bool:
    return hasattr(torch.ops.aten, name)


def private_uses(tree: ast.Module, defined: set[str]) -> list[str]:
    """`line: text` of each private torch name `tree` uses."""
    found = []

    def foreign(name: str) -> bool:
        return _private(name) and name not in defined and not _aten_op(name)

    for node in ast.walk(tree):
        bad = False
        if isinstance(node, ast.Import):
            bad = any(_torch_private_module(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            from_torch = node.module.split(".")[0] == "torch"
            bad = _torch_private_module(node.module) or (
                from_torch and any(_private(alias.name) for alias in node.names)
            )
        elif isinstance(node, ast.Attribute) and foreign(node.attr):
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            bad = (owner, node.attr) not in PYTHON_PRIVATE
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "setattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            bad = foreign(node.args[1].value)
        if bad:
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def _torch_private_module(module: str) -> bool:
    parts = module.split(".")
    return parts[0] == "torch" and any(_private(part) for part in parts[1:])


def _modules() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(encoding="utf-8")) for path in PACKAGE.rglob("*.py")}


def test_only_torchapi_names_private_torch_apis():
    modules = _modules()
    others = {path: tree for path, tree in modules.items() if path != ALLOWED}
    defined = _defined(list(others.values()))
    found = {
        str(path.relative_to(PACKAGE)): uses
        for path, tree in sorted(others.items())
        if (uses := private_uses(tree, defined))
    }
    assert not found, f"private torch names outside engine/torchapi.py: {found}"


def test_the_check_sees_torchapi_s_private_names():
    modules = _modules()
    defined = _defined([tree for path, tree in modules.items() if path != ALLOWED])
    uses = "\n".join(private_uses(modules[ALLOWED], defined))
    for name in ("torch._subclasses", "torch._C", "_cdata", "_record_memory_history", "_schema"):
        assert name in uses


@pytest.mark.parametrize(
    "code",
    [
        "import torch._dynamo",
        "from torch._inductor import config",
        "from torch.utils._pytree import tree_leaves",
        "from torch import _C",
        "x = torch._C._get_default_device",
        "torch.cuda.memory._snapshot()",
        "key = storage._cdata",
        "schema = getattr(op, '_schema', None)",
    ],
)
def test_each_kind_of_private_use_is_found(code):
    assert private_uses(ast.parse(code), set())


@pytest.mark.parametrize(
    "code",
    [
        "torch.__version__",
        "torch.ops.aten._softmax.default",
        "aten._unsafe_view.default",
        "sys._getframe(1)",
        "self._events.append(event)",
        "import torch.utils.checkpoint",
    ],
)
def test_public_and_own_names_pass(code):
    assert not private_uses(ast.parse(code), {"_events"})
