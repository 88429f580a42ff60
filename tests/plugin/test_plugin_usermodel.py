"""`--gpt-model`: a project's own model.py, built as train.py builds it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gptlint.runmodel.trainingrun import ModelShape
from pytest_gptcfg.engine.usermodel import UserModelError, model_factory

DATA = Path(__file__).parent / "data"


def test_the_factory_builds_gpt_from_gptconfig_with_the_shape(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("MODEL_BUILT_LOG", str(tmp_path / "built.log"))
    shutil.copy(DATA / "model.py", tmp_path / "model.py")
    build = model_factory(tmp_path / "model.py")
    model = build(ModelShape(3, 1, 16, 8, 11, False, 0.0))
    assert model.wte.weight.shape == (11, 16)
    assert len(model.mlp) == 3
    assert (tmp_path / "built.log").read_text() == "3x16\n"


def test_sibling_modules_can_be_imported(tmp_path):
    (tmp_path / "layers.py").write_text("WIDTH = 4\n")
    (tmp_path / "model.py").write_text(
        "from layers import WIDTH\n"
        "class GPTConfig:\n    def __init__(self, **kw):\n        self.kw = kw\n"
        "class GPT:\n    def __init__(self, config):\n        self.width = WIDTH\n"
    )
    assert model_factory(tmp_path / "model.py")(ModelShape(1, 1, 8, 8, 8, False, 0.0)).width == 4


def test_a_model_py_without_gpt_is_explained(tmp_path):
    (tmp_path / "model.py").write_text("class GPTConfig:\n    pass\n")
    with pytest.raises(UserModelError, match=r"model.py: defines no GPT"):
        model_factory(tmp_path / "model.py")


def test_a_model_py_that_fails_to_import_is_explained(tmp_path):
    (tmp_path / "model.py").write_text("import not_installed_anywhere\n")
    with pytest.raises(UserModelError, match=r"importing it failed: ModuleNotFoundError"):
        model_factory(tmp_path / "model.py")
