"""The `gptlint` command as a user runs it: paths, options, output formats, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gptlint import __version__
from gptlint.command.cli import main

SCENARIO = "n_layer = 12\nn_head = 12\nn_embd = 512\n"
CLEAN = "n_layer = 12\nn_head = 8\nn_embd = 512\n"
MESSAGE = (
    "GPT101 n_embd=512 is not divisible by n_head=12 (512/12 = 42.67); use n_head=8"
    " (head_dim 64, 63.52M params, unchanged) or n_embd=480 (head_dim 40, 57.34M)"
    " / 576 (head_dim 48, 76.77M)"
)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project folder (with its own pyproject.toml) as the current folder."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def gptlint(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def gptlint_process(*args: str, stdin: bytes = b"", cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gptlint", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        timeout=60,
    )


def test_reports_path_line_col_code_message_and_fix(project, capsys):
    write(project / "config" / "train.py", SCENARIO)
    code, out, err = gptlint(capsys, "--select", "GPT101", "config/train.py")
    assert code == 1
    assert out.splitlines() == [
        f"config/train.py:3:1: {MESSAGE}",
        "  fix: set n_head = 8 (gptlint --fix)",
        "Found 1 problem (1 fixable with `gptlint --fix`).",
    ]
    assert err == ""


def test_clean_config_exits_zero(project, capsys):
    write(project / "config" / "train.py", CLEAN)
    assert gptlint(capsys, "--select", "GPT101", "config") == (0, "All checks passed!\n", "")


def test_folder_is_searched_recursively_and_sorted(project, capsys):
    write(project / "config" / "b.py", SCENARIO)
    write(project / "config" / "sub" / "a.py", SCENARIO)
    write(project / "config" / ".venv" / "lib.py", SCENARIO)
    write(project / "config" / "notes.txt", SCENARIO)
    code, out, _ = gptlint(capsys, "--select", "GPT101", "config")
    assert code == 1
    paths = [line.split(":")[0] for line in out.splitlines() if "GPT101" in line]
    assert paths == [os.path.join("config", "b.py"), os.path.join("config", "sub", "a.py")]


def test_a_file_named_twice_is_linted_once(project, capsys):
    write(project / "config" / "a.py", SCENARIO)
    code, out, _ = gptlint(capsys, "--select", "GPT101", "config", "config/a.py", "./config/a.py")
    assert code == 1 and out.count("GPT101") == 1


def test_default_path_is_the_current_folder(project, capsys):
    write(project / "config" / "train.py", SCENARIO)
    code, out, _ = gptlint(capsys, "--select", "GPT101")
    assert code == 1
    assert os.path.join("config", "train.py") + ":3:1: GPT101" in out


def test_folder_skips_code_that_is_not_a_config(project, capsys):
    write(project / "config" / "train.py", SCENARIO)
    write(project / "model.py", "n_head = 12\nn_embd = 500\nclass GPT:\n    pass\n")
    write(project / "sample.py", "n_embd = 500\nexec(open('configurator.py').read())\n")
    code, out, _ = gptlint(capsys, "--select", "GPT101", ".")
    assert code == 1
    assert "model.py" not in out and "sample.py" not in out
    assert "train.py:3:1: GPT101" in out


# After nanoGPT's data/shakespeare/prepare.py and a batch-size calculator script: code that
# sets no key train.py knows.
PREPARE_PY = """\
import os
input_file_path = os.path.join(os.path.dirname(__file__), 'input.txt')
with open(input_file_path, 'r') as f:
    data = f.read()
n = len(data)
"""

CALCULATOR_PY = """\
device_batch_size = 2
sequence_length = 4736
if device_batch_size > 1:
    print(device_batch_size * sequence_length)
"""


def test_a_folder_leaves_out_scripts_that_set_no_known_key(project, capsys):
    write(project / "data" / "shakespeare" / "prepare.py", PREPARE_PY)
    write(project / "tools" / "calculator.py", CALCULATOR_PY)
    write(project / "config" / "typos.py", "batchsize = 8\n")  # a config of typos only
    code, out, _ = gptlint(capsys, "--select", "GPT201", ".")
    assert code == 1
    assert "prepare.py" not in out and "calculator.py" not in out
    assert "typos.py:1:1: GPT201" in out
    assert gptlint(capsys, "tools") == (2, "", "gptlint: error: tools: no config files found\n")
    assert gptlint(capsys, "tools/calculator.py") == (0, "All checks passed!\n", "")  # named


def test_named_file_is_linted_even_if_it_does_not_look_like_a_config(project, capsys):
    write(project / "model.py", "n_embd = 500\nclass GPT:\n    pass\n")
    code, out, _ = gptlint(capsys, "--select", "GPT101", "model.py")
    assert code == 1
    assert out.startswith("model.py:1:1: GPT101")


def test_exclude_from_pyproject_applies_to_folders_and_named_files(project, capsys):
    (project / "pyproject.toml").write_text('[tool.gptlint]\nexclude = ["config/old/*"]\n')
    write(project / "config" / "old" / "a.py", SCENARIO)
    write(project / "config" / "new.py", CLEAN)
    assert gptlint(capsys, "--select", "GPT101", "config")[0] == 0
    code, out, _ = gptlint(capsys, "--select", "GPT101", "config/old/a.py")
    assert (code, out) == (0, "All checks passed!\n")


def test_exclude_patterns_match_inside_the_project_only(project, capsys):
    (project / "pyproject.toml").write_text(f'[tool.gptlint]\nexclude = ["{project.name}"]\n')
    write(project / "config" / "a.py", SCENARIO)
    assert gptlint(capsys, "--select", "GPT101", str(project / "config"))[0] == 1


def test_exclude_on_the_command_line(project, capsys):
    write(project / "config" / "scratch" / "a.py", SCENARIO)
    write(project / "config" / "b.py", CLEAN)
    assert gptlint(capsys, "--select", "GPT101", "--exclude", "scratch", "config")[0] == 0


def test_select_and_ignore(project, capsys):
    write(project / "c.py", SCENARIO)
    assert gptlint(capsys, "--select", "GPT101", "c.py")[0] == 1
    assert gptlint(capsys, "--select", "GPT101", "--ignore", "GPT101", "c.py")[0] == 0
    assert gptlint(capsys, "--select", "GPT1", "--ignore", "GPT1", "c.py")[0] == 0
    code, out, _ = gptlint(capsys, "--select", "gpt101", "--ignore", "GPT1", "c.py")
    assert code == 1 and "GPT101" in out  # the more specific code wins, as in Ruff


def test_unknown_rule_code_is_a_usage_error(project, capsys):
    write(project / "c.py", SCENARIO)
    code, out, err = gptlint(capsys, "--select", "GPT999", "c.py")
    assert code == 2 and out == ""
    assert err == "gptlint: error: --select: 'GPT999' matches no rule (see gptlint --list-rules)\n"
    code, _, err = gptlint(capsys, "--ignore", "E501", "c.py")
    assert code == 2 and "not a rule code" in err


def test_noqa_with_code_and_bare(project, capsys):
    write(project / "a.py", "n_head = 12\nn_embd = 512  # noqa: GPT101\n")
    write(project / "b.py", "n_head = 12\nn_embd = 512  # NOQA\n")
    write(project / "c.py", "n_head = 12\nn_embd = 512  # noqa: GPT102, E501\n")
    write(project / "d.py", "n_head = 12\nn_embd = 512; note = '# noqa'\n")
    write(project / "e.py", "n_head = 12\x0c\nn_embd = 512  # see # noqa:GPT101\n")
    write(project / "f.py", "c = GPTConfig(\n    n_head=12,  # noqa: GPT101\n    n_embd=500,\n)\n")
    code, out, _ = gptlint(capsys, "--select", "GPT101", *(f"{n}.py" for n in "abcdef"))
    assert code == 1
    reported = [line.split(":")[0] for line in out.splitlines() if "GPT101" in line]
    assert reported == ["c.py", "d.py"]


def test_output_format_json(project, capsys):
    write(project / "c.py", SCENARIO)
    code, out, _ = gptlint(capsys, "--select", "GPT101", "--output-format", "json", "c.py")
    assert code == 1
    assert json.loads(out) == [
        {
            "code": "GPT101",
            "severity": "error",
            "message": MESSAGE.removeprefix("GPT101 "),
            "filename": "c.py",
            "location": {"row": 3, "column": 1},
            "end_location": {"row": 3, "column": 7},
            "fix": {
                "applicability": "safe",
                "message": "set n_head = 8",
                "edits": [
                    {
                        "content": "8",
                        "location": {"row": 2, "column": 10},
                        "end_location": {"row": 2, "column": 12},
                    }
                ],
            },
        }
    ]


def test_output_format_github(project, capsys):
    write(project / "c.py", SCENARIO)
    code, out, _ = gptlint(capsys, "--select", "GPT101", "--output-format", "github", "c.py")
    assert code == 1
    assert out.startswith(
        "::error title=gptlint (GPT101),file=c.py,line=3,col=1,endLine=3,endColumn=7::GPT101 "
        "n_embd=512 is not divisible by n_head=12"
    )
    assert out.count("\n") == 1


def test_unknown_output_format(project, capsys):
    write(project / "c.py", SCENARIO)
    code, out, err = gptlint(capsys, "--output-format", "xml", "c.py")
    assert (code, out) == (2, "")
    assert err.startswith("gptlint: error: unknown output format 'xml' (choose from text, json")


def test_statistics(project, capsys):
    write(project / "a.py", SCENARIO)
    write(project / "b.py", SCENARIO)
    code, out, _ = gptlint(capsys, "--select", "GPT101", "--statistics", "a.py", "b.py")
    assert (code, out) == (1, "    2  GPT101  [*] embd-not-divisible-by-heads\n")


def test_exit_zero(project, capsys):
    write(project / "c.py", SCENARIO)
    code, out, _ = gptlint(capsys, "--select", "GPT101", "--exit-zero", "c.py")
    assert code == 0 and "GPT101" in out


def test_explain_and_list_rules(capsys):
    code, out, _ = gptlint(capsys, "--explain", "gpt101")
    assert code == 0
    assert out.startswith("GPT101 (embd-not-divisible-by-heads): n_embd is not divisible")
    assert "keep-width" in out
    code, out, _ = gptlint(capsys, "--list-rules")
    assert code == 0
    codes = [line.split()[0] for line in out.splitlines()]
    assert codes[:1] == ["GPT000"] and "GPT101" in codes and codes == sorted(codes)


def test_explain_unknown_code(capsys):
    code, out, err = gptlint(capsys, "--explain", "GPT999")
    assert (code, out) == (2, "")
    assert err == "gptlint: error: unknown rule code 'GPT999' (see gptlint --list-rules)\n"


def test_version_imports_neither_libcst_nor_torch(tmp_path):
    probe = (
        "import sys\n"
        "from gptlint.command.cli import main\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0\n"
        "print(sorted(m for m in ('libcst', 'torch') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert result.stdout == f"gptlint {__version__}\n[]\n"


def test_usage_error_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["--no-such-option"])
    assert raised.value.code == 2
    _, err = capsys.readouterr()
    assert err == "gptlint: error: unrecognized arguments: --no-such-option\n"


def test_unsafe_fixes_alone_changes_nothing(project, capsys):
    path = write(project / "c.py", SCENARIO)
    code, out, _ = gptlint(capsys, "--select", "GPT101", "--unsafe-fixes", "c.py")
    assert code == 1
    assert path.read_text() == SCENARIO
    assert out.endswith("Found 1 problem (1 fixable with `gptlint --fix --unsafe-fixes`).\n")


def test_fix_rewrites_the_file_and_reports_what_remains(project, capsys):
    path = write(project / "c.py", SCENARIO)
    code, out, _ = gptlint(capsys, "--select", "GPT101", "--fix", "c.py")
    assert (code, out) == (0, "Fixed 1 problem. All checks passed!\n")
    assert path.read_text() == CLEAN


def test_diff_prints_a_diff_writes_nothing_and_exits_1(project, capsys):
    path = write(project / "c.py", SCENARIO)
    code, out, err = gptlint(capsys, "--select", "GPT101", "--diff", "c.py")
    assert code == 1 and err == ""
    assert out == (
        "--- c.py\n+++ c.py\n@@ -1,3 +1,3 @@\n"
        " n_layer = 12\n-n_head = 12\n+n_head = 8\n n_embd = 512\n"
    )
    assert path.read_text() == SCENARIO
    assert gptlint(capsys, "--select", "GPT101", "--diff", "--exit-zero", "c.py")[0] == 0
    write(project / "d.py", CLEAN)
    assert gptlint(capsys, "--select", "GPT101", "--diff", "d.py") == (0, "", "")


def test_stdin_lints_and_names_the_file(project):
    result = gptlint_process(
        "--select",
        "GPT101",
        "--stdin-filename",
        "config/x.py",
        "-",
        stdin=SCENARIO.encode(),
        cwd=project,
    )
    assert result.returncode == 1
    assert result.stdout.decode().startswith("config/x.py:3:1: GPT101 n_embd=512")


def test_stdin_fix_writes_the_fixed_file_to_stdout_and_the_report_to_stderr(project):
    result = gptlint_process(
        "--select", "GPT101", "--fix", "-", stdin=SCENARIO.encode(), cwd=project
    )
    assert result.returncode == 0
    assert result.stdout == CLEAN.encode()
    assert result.stderr == b"Fixed 1 problem. All checks passed!\n"


def test_stdin_fix_of_an_unreadable_file_echoes_it_unchanged(project):
    broken = b"n_head = (12\r\n"
    result = gptlint_process("--fix", "-", stdin=broken, cwd=project)
    assert result.returncode == 2
    assert result.stdout == broken
    assert result.stderr.decode().startswith("-:1:10: GPT000 syntax error: '(' was never closed")


def test_stdin_diff(project):
    result = gptlint_process(
        "--select",
        "GPT101",
        "--diff",
        "--stdin-filename",
        "c.py",
        stdin=SCENARIO.encode(),
        cwd=project,
    )
    assert result.returncode == 1
    assert result.stdout.decode().startswith("--- c.py\n+++ c.py\n")


def test_stdin_cannot_be_combined_with_paths(project, capsys):
    write(project / "c.py", CLEAN)
    code, _, err = gptlint(capsys, "-", "c.py")
    assert code == 2
    assert err == "gptlint: error: '-' (stdin) cannot be combined with other paths\n"


def test_settings_from_the_nearest_pyproject_and_cli_wins(project, capsys):
    (project / "pyproject.toml").write_text('[tool.gptlint]\nfix-strategy = "keep-heads"\n')
    path = write(project / "config" / "c.py", SCENARIO)
    assert (
        gptlint(capsys, "--select", "GPT101", "--diff", "config/c.py")[1].count("+n_embd = 480")
        == 1
    )
    code, out, _ = gptlint(
        capsys, "--select", "GPT101", "--fix-strategy", "keep-width", "--diff", "config/c.py"
    )
    assert code == 1 and "+n_head = 8" in out
    nested = project / "config" / "pyproject.toml"
    nested.write_text('[tool.gptlint]\nselect = ["GPT000"]\n')
    assert gptlint(capsys, "config/c.py")[0] == 0  # the nearest file's select applies
    assert gptlint(capsys, "--select", "GPT101", "config/c.py")[0] == 1  # the CLI wins
    assert path.read_text() == SCENARIO


def test_console_script_runs(project):
    write(project / "c.py", SCENARIO)
    result = gptlint_process("--select", "GPT101", "c.py", cwd=project)
    assert result.returncode == 1
    assert result.stdout.decode().splitlines()[0] == f"c.py:3:1: {MESSAGE}"
    assert result.stderr == b""


def many_problems(project: Path, files: int) -> None:
    for number in range(files):
        write(project / "config" / f"train_{number:03d}.py", SCENARIO)


@pytest.mark.slow
def test_the_command_writes_its_whole_report_before_it_exits(project, capsys):
    """The command exits without tearing the interpreter down: everything it printed still
    reaches a pipe and a file, far more than a pipe holds, as `main` prints it."""
    many_problems(project, 300)
    expected = gptlint(capsys, "config")
    assert len(expected[1]) > 1 << 16  # more than a pipe holds
    piped = gptlint_process("config", cwd=project)
    assert (piped.returncode, piped.stdout.decode(), piped.stderr.decode()) == expected
    with open(project / "report.txt", "wb") as report:
        code = subprocess.run(
            [sys.executable, "-m", "gptlint", "config"], stdout=report, cwd=project, timeout=60
        ).returncode
    assert (code, (project / "report.txt").read_text()) == expected[:2]


def test_a_reader_that_stops_early_ends_the_run_quietly(project):
    """`gptlint config/ | head -1`: the run stops at the closed pipe, exit 2, no traceback."""
    many_problems(project, 300)
    process = subprocess.Popen(
        [sys.executable, "-m", "gptlint", "config"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=project,
    )
    first = process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 2
    assert first.startswith(b"config/train_000.py:3:1: GPT101 ")
    assert stderr == b""
