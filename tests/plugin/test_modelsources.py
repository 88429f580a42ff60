"""The project's files a model's module imports, however deep: what its compiled plans are
keyed by beside the module itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptlint.runmodel.trainingrun import ModelShape
from pytest_gptcfg.engine.modelsources import imported_files
from pytest_gptcfg.engine.usermodel import model_factory

GPT = """
class GPTConfig:
    def __init__(self, **kw):
        self.kw = kw


class GPT:
    def __init__(self, config):
        self.width = WIDTH * HEADS
"""

PROJECT = {
    "nets_dg/__init__.py": "",
    "nets_dg/gpt.py": "from nets_dg.sub.layers import WIDTH\nfrom .sub import attn\n"
    "HEADS = attn.HEADS\n" + GPT,
    "nets_dg/sub/__init__.py": "",
    "nets_dg/sub/layers.py": "WIDTH = 4\n",
    "nets_dg/sub/attn.py": "def heads():\n    from ..unrelated_but_named import x\n"
    "    return x\nHEADS = 2\n",
    "nets_dg/unrelated_but_named.py": "x = 1\n",
    "nets_dg/unused.py": "WIDTH = 8\n",
    "tests/test_train.py": "def test_it():\n    pass\n",
}


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")


def test_a_models_plans_are_keyed_by_the_project_files_it_imports_however_deep(tmp_path):
    write(tmp_path, PROJECT)
    gpt = tmp_path / "nets_dg" / "gpt.py"
    build = model_factory(gpt, run_from=tmp_path)
    assert build(ModelShape(1, 1, 8, 8, 8, False, 0.0)).width == 8
    digests = [build.digest]
    for edited in ("sub/layers.py", "sub/attn.py", "unrelated_but_named.py", "unused.py"):
        with (tmp_path / "nets_dg" / edited).open("a") as file:
            file.write("# edited\n")
        digests.append(model_factory(gpt, run_from=tmp_path).digest)
    with (tmp_path / "tests" / "test_train.py").open("a") as file:
        file.write("# edited\n")
    digests.append(model_factory(gpt, run_from=tmp_path).digest)
    assert len(set(digests[:4])) == 4  # each module it imports, in a function too
    assert digests[4] == digests[3]  # a module of its package it does not import
    assert digests[5] == digests[4]  # the project's tests


@pytest.mark.parametrize(
    ("source", "reached"),
    [
        ("import pkg.mod\n", {"pkg/__init__.py", "pkg/mod.py"}),
        ("from pkg import mod, NAME\n", {"pkg/__init__.py", "pkg/mod.py"}),
        ("from pkg.mod import *\n", {"pkg/__init__.py", "pkg/mod.py"}),
        ("if False:\n    import top\n", {"top.py"}),
        ("import torch, os.path\n", set()),  # not the project's
        ("import pkg.missing\n", set()),
        ("this is not Python\n", set()),
    ],
)
def test_the_files_an_import_statement_reaches(tmp_path, source, reached):
    write(
        tmp_path,
        {"pkg/__init__.py": "", "pkg/mod.py": "import top\n", "top.py": "", "main.py": source},
    )
    if "pkg/mod.py" in reached:
        reached = reached | {"top.py"}  # and what that module imports
    found = imported_files(tmp_path / "main.py", (tmp_path,))
    assert {p.relative_to(tmp_path).as_posix() for p in found} == reached | {"main.py"}


def test_a_relative_import_is_read_in_the_importing_modules_package(tmp_path):
    write(
        tmp_path,
        {
            "a/__init__.py": "",
            "a/b/__init__.py": "",
            "a/b/c.py": "from .. import sibling\nfrom ..b import d\nfrom . import e\n",
            "a/sibling.py": "",
            "a/b/d.py": "",
            "a/b/e.py": "",
            "sibling.py": "",  # the same name at the top: not the one imported
        },
    )
    found = imported_files(tmp_path / "a" / "b" / "c.py", (tmp_path,))
    assert {p.relative_to(tmp_path).as_posix() for p in found} == {
        "a/b/c.py",
        "a/__init__.py",
        "a/sibling.py",
        "a/b/__init__.py",
        "a/b/d.py",
        "a/b/e.py",
    }
