"""`[tool.gptlint]` in the nearest pyproject.toml: every key, the search for the file, and how
command-line values sit on top."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptlint.command.cli import main
from gptlint.lint.rules import RULE_CODES
from gptlint.settings.pyproject import find_pyproject, load_settings
from gptlint.settings.table import Settings, SettingsError

GIB = 1024**3


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_every_key(tmp_path):
    write(tmp_path / "nanogpt" / "train.py", "batch_size = 12\n")
    write(tmp_path / "nanogpt" / "model.py", "class GPTConfig:\n    pass\n")
    write(
        tmp_path / "pyproject.toml",
        "[tool.gptlint]\n"
        'select = ["gpt1", "GPT201"]\n'
        'ignore = "GPT105, GPT204"\n'
        'gpu = "A100-80GB"\n'
        'memory-budget = "11.5GiB"\n'
        "world-size = 4\n"
        'defaults = "nanogpt/train.py"\n'
        'model = "nanogpt/model.py"\n'
        'fix-strategy = "keep-heads"\n'
        'exclude = ["config/old/*", "scratch"]\n',
    )
    settings = load_settings(tmp_path / "config", RULE_CODES)
    assert settings == Settings(
        select=("GPT1", "GPT201"),
        ignore=("GPT105", "GPT204"),
        gpu="a100-80gb",
        memory_budget=int(11.5 * GIB),
        world_size=4,
        defaults=(tmp_path / "nanogpt" / "train.py").resolve(),
        model=(tmp_path / "nanogpt" / "model.py").resolve(),
        fix_strategy="keep-heads",
        exclude=("config/old/*", "scratch"),
    )
    assert settings.root == tmp_path.resolve()


def test_no_pyproject_means_defaults(tmp_path):
    assert load_settings(tmp_path, RULE_CODES) == Settings()
    assert Settings().select is None and Settings().gpu == "rtx4070"


def test_the_nearest_file_with_the_table_wins(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.gptlint]\ngpu = "t4"\n')
    write(tmp_path / "sub" / "pyproject.toml", "[project]\nname = 'no table here'\n")
    write(tmp_path / "sub" / "deeper" / "pyproject.toml", '[tool.gptlint]\ngpu = "rtx3090"\n')
    assert load_settings(tmp_path / "sub" / "config", RULE_CODES).gpu == "t4"
    assert (
        load_settings(tmp_path / "sub" / "deeper" / "config" / "x.py", RULE_CODES).gpu == "rtx3090"
    )
    assert find_pyproject(tmp_path / "sub") == (tmp_path / "pyproject.toml").resolve()


def test_the_table_may_be_written_inline(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool]\ngptlint = { gpu = "t4", world-size = 2 }\n')
    settings = load_settings(tmp_path, RULE_CODES)
    assert (settings.gpu, settings.world_size) == ("t4", 2)


def test_a_file_that_only_depends_on_gptlint_is_not_a_settings_file(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.gptlint]\ngpu = "t4"\n')
    write(tmp_path / "app" / "pyproject.toml", '[project]\ndependencies = ["gptlint"]\n')
    assert load_settings(tmp_path / "app", RULE_CODES).gpu == "t4"


def test_an_edited_file_is_read_again(tmp_path):
    path = write(tmp_path / "pyproject.toml", '[tool.gptlint]\ngpu = "t4"\n')
    assert load_settings(tmp_path, RULE_CODES).gpu == "t4"
    path.write_text('[tool.gptlint]\ngpu = "rtx4090"\n')
    assert load_settings(tmp_path, RULE_CODES).gpu == "rtx4090"


def test_command_line_values_sit_on_top(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.gptlint]\ngpu = "t4"\nworld-size = 2\n')
    merged = load_settings(tmp_path, RULE_CODES).merged({"gpu": "rtx4090", "world_size": None})
    assert (merged.gpu, merged.world_size) == ("rtx4090", 2)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('select = ["GPT999"]', "'GPT999' matches no rule"),
        ('select = ["E501"]', "'E501' is not a rule code or prefix"),
        ('memory-budget = "a lot"', "cannot read memory size 'a lot'"),
        ("world-size = true", "must be a positive integer"),
        ('fix-strategy = "wider"', "must be one of keep-width, keep-heads, not 'wider'"),
        ("exclude = [1, 2]", "must be a list of strings"),
        ('model = "missing.py"', "no such file"),
    ],
)
def test_bad_values_name_file_line_and_reason(tmp_path, line, reason):
    write(tmp_path / "pyproject.toml", f"[project]\nname = 'x'\n\n[tool.gptlint]\n{line}\n")
    with pytest.raises(SettingsError) as raised:
        load_settings(tmp_path, RULE_CODES)
    message = str(raised.value)
    assert message.startswith(f"{(tmp_path / 'pyproject.toml').resolve()}:5: ")
    assert reason in message


def test_settings_change_what_the_cli_reports(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "pyproject.toml", '[tool.gptlint]\nselect = ["GPT101"]\n')
    write(tmp_path / "config" / "c.py", "n_head = 12\nn_embd = 512\n")
    assert main(["config"]) == 1
    assert capsys.readouterr().out.startswith("config/c.py:2:1: GPT101")
    write(tmp_path / "config" / "pyproject.toml", '[tool.gptlint]\nselect = ["GPT000"]\n')
    assert main(["config"]) == 0
    assert main(["--select", "GPT101", "config"]) == 1


def test_deeply_nested_toml_is_a_settings_error(tmp_path, capsys):
    from gptlint.command.cli import main

    (tmp_path / "pyproject.toml").write_text(
        "[tool.gptlint]\nx = " + "[" * 100_000 + "]" * 100_000 + "\n"
    )
    (tmp_path / "c.py").write_text("n_layer = 1\n")
    assert main([str(tmp_path / "c.py")]) == 2
    assert "TOML nested too deeply to read" in capsys.readouterr().err


def test_cuda_context_setting_replaces_the_profiles_figure(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.gptlint]\ngpu = "t4"\ncuda-context = "863MiB"\n')
    settings = load_settings(tmp_path, RULE_CODES)
    assert settings.cuda_context == 863 * 2**20
    profile = settings.profile()
    assert (profile.name, profile.context_bytes) == ("t4", 863 * 2**20)
    assert profile.context_source == "the cuda-context setting"
    assert Settings(gpu="t4").profile().context_source == "default"
