"""Hostile input: for any file, folder or setting gptlint gives a clear one-line error naming
the file (and line) with exit code 2, or a correct result; never a traceback, a hang, a crash,
a lost comment or byte, or changed file metadata."""

from __future__ import annotations

import ctypes
import os
import pickle
import re
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gptlint.command.cli import main
from gptlint.facts.units import parse_memory
from gptlint.nanogpt.metadata import MetaError, read_meta_vocab
from gptlint.text.write import write_atomically

SHAPE = "n_layer = 12\nn_head = 12\nn_embd = 512\n"


def gptlint(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["--select", "GPT000,GPT101", *args])
    out, err = capsys.readouterr()
    return code, out, err


def gptlint_process(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """In a child process: a crash (a segfault in a parser) or a hang fails the test only."""
    return subprocess.run(
        [sys.executable, "-m", "gptlint", "--select", "GPT000,GPT101", *args],
        capture_output=True,
        cwd=cwd,
        timeout=timeout,
    )


# 1. --fix keeps every byte it does not target, and the file's metadata


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (
            "n_layer = 12\nn_head = (\n    12  # inner comment\n)\nn_embd = 512\n",
            "n_layer = 12\nn_head = (\n    8  # inner comment\n)\nn_embd = 512\n",
        ),
        (
            "n_layer = 12\nn_head = ( 12 )  # c\nn_embd = 512\n",
            "n_layer = 12\nn_head = ( 8 )  # c\nn_embd = 512\n",
        ),
        (
            "n_layer = 12\nn_head = ((12))\nn_embd = 512\n",
            "n_layer = 12\nn_head = ((8))\nn_embd = 512\n",
        ),
        (
            "cfg = GPTConfig(n_layer=12, n_head=(12  # c\n), n_embd=512)\n",
            "cfg = GPTConfig(n_layer=12, n_head=(8  # c\n), n_embd=512)\n",
        ),
        (  # an expression with a comment of its own is left alone rather than losing it
            "n_layer = 12\nn_head = (6 *  # half\n 2)\nn_embd = 512\n",
            "n_layer = 12\nn_head = (6 *  # half\n 2)\nn_embd = 512\n",
        ),
    ],
)
def test_fix_replaces_only_the_number(project, capsys, before, after):
    (project / "c.py").write_text(before)
    gptlint(capsys, "--fix", "c.py")
    assert (project / "c.py").read_text() == after


def test_fix_keeps_keep_heads_parens(project, capsys):
    (project / "c.py").write_text("n_layer = 12\nn_head = 8\nn_embd = (700)  # c\n")
    gptlint(capsys, "--fix", "--fix-strategy", "keep-heads", "c.py")
    assert (project / "c.py").read_text() == "n_layer = 12\nn_head = 8\nn_embd = (704)  # c\n"


def test_fix_keeps_final_bare_cr(project, capsys):
    (project / "c.py").write_bytes(SHAPE.replace("\n", "\r").encode())
    assert gptlint(capsys, "--fix", "c.py")[0] == 0
    assert (project / "c.py").read_bytes() == SHAPE.replace("\n", "\r").replace(
        "n_head = 12", "n_head = 8"
    ).encode()


FIXED = SHAPE.replace("n_head = 12", "n_head = 8")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can create a file owned by another user")
def test_fix_keeps_owner_group_and_mode(project, capsys):
    path = project / "c.py"
    path.write_text(SHAPE)
    os.chown(path, 65534, 65534)
    path.chmod(0o640)
    assert gptlint(capsys, "--fix", "c.py")[0] == 0
    info = path.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (65534, 65534, 0o640)
    assert path.read_text() == FIXED


def test_fix_writes_through_a_symlink(project, capsys):
    (project / "real.py").write_text(SHAPE)
    (project / "link.py").symlink_to("real.py")
    assert gptlint(capsys, "--fix", "link.py")[0] == 0
    assert (project / "link.py").is_symlink()
    assert (project / "real.py").read_text() == FIXED


def test_fix_refuses_to_break_hard_links(project, capsys):
    (project / "a.py").write_text(SHAPE)
    os.link(project / "a.py", project / "b.py")
    code, _, err = gptlint(capsys, "--fix", "a.py")
    assert code == 2
    assert err == (
        "gptlint: error: a.py: cannot write the fixed file: the file has 2 hard links; replacing"
        " it would break them (not fixed: apply the fix with --diff and patch)\n"
    )
    assert (project / "a.py").read_text() == SHAPE
    assert os.stat(project / "a.py").st_ino == os.stat(project / "b.py").st_ino


def test_fix_leaves_no_temporary_files_and_removes_stale_ones(project, capsys):
    path = project / "c.py"
    path.write_text(SHAPE)
    stale = [project / ".c.py.gptlint-0123abcd.tmp", project / ".c.py.k2j_x9aa.tmp"]
    fresh = project / ".c.py.gptlint-fresh.tmp"  # perhaps another run's, being written now
    other = project / ".d.py.gptlint-0123abcd.tmp"
    for leftover in [*stale, fresh, other]:
        leftover.write_text("partial")
    old = time.time() - 3600
    for leftover in [*stale, other]:
        os.utime(leftover, (old, old))
    assert gptlint(capsys, "--fix", "c.py")[0] == 0
    assert sorted(p.name for p in project.iterdir()) == sorted(
        ["pyproject.toml", "c.py", fresh.name, other.name]
    )


def _unnamed_files_work(folder: Path) -> bool:
    """Whether this kernel and file system let a process create an unnamed file in `folder`
    and name it afterwards (O_TMPFILE, then linkat with AT_EMPTY_PATH)."""
    try:
        fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o600)
    except (AttributeError, OSError):
        return False
    try:
        name = os.fsencode(folder / "probe")
        linked = ctypes.CDLL(None, use_errno=True).linkat(fd, b"", -100, name, 0x1000) == 0
    finally:
        os.close(fd)
    (folder / "probe").unlink(missing_ok=True)
    return linked


def _kill_a_fix_during_its_write(path: Path, unnamed: bool, flush: int = 1) -> bool:
    """Run write_atomically in a child killed (SIGKILL) at its `flush`-th flush of file data
    to disk (where the new data is all written); whether it was killed (else it finished)."""
    child = os.fork()
    if child == 0:  # pragma: no cover - the child is killed
        try:
            if not unnamed:
                del os.O_TMPFILE
            real_fsync, flushes = os.fsync, []

            def fsync_then_die(fd):
                real_fsync(fd)
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    flushes.append(fd)
                    if len(flushes) == flush:
                        os.kill(os.getpid(), 9)

            os.fsync = fsync_then_die
            write_atomically(path, b"x = 1\n" * 100_000)
        finally:
            os._exit(0)
    _, status = os.waitpid(child, 0)
    return os.WIFSIGNALED(status)


@pytest.mark.parametrize("flush", [1, 2])
def test_a_fix_killed_during_its_write_leaves_no_file(tmp_path, flush):
    """Where the kernel allows an unnamed file, a kill at any flush of the write leaves none
    (gptlint used to fall back to a named file after failing to link the unnamed one)."""
    if not _unnamed_files_work(tmp_path):
        pytest.skip("no unnamed files (O_TMPFILE + linkat AT_EMPTY_PATH) here")
    path = tmp_path / "c.py"
    path.write_text(SHAPE)
    killed = _kill_a_fix_during_its_write(path, unnamed=True, flush=flush)
    assert list(tmp_path.iterdir()) == [path]
    assert path.read_text() == (SHAPE if killed else "x = 1\n" * 100_000)


def test_the_next_fix_removes_a_killed_fixs_temporary_file_and_says_so(project, capsys):
    """Where no unnamed file can be made, a kill leaves one named temporary file, which the
    next fix of that file removes once it is stale, naming it."""
    path = project / "c.py"
    path.write_text(SHAPE)
    assert _kill_a_fix_during_its_write(path, unnamed=False)
    assert path.read_text() == SHAPE
    (leftover,) = (p for p in project.iterdir() if p.name.startswith(".c.py.gptlint-"))
    assert re.fullmatch(r"\.c\.py\.gptlint-\w+\.tmp", leftover.name)
    old = time.time() - 3600
    os.utime(leftover, (old, old))
    code, _, err = gptlint(capsys, "--fix", "c.py")
    assert code == 0
    assert err == f"gptlint: c.py: removed {leftover.name}, left by an interrupted gptlint --fix\n"
    assert sorted(p.name for p in project.iterdir()) == ["c.py", "pyproject.toml"]
    assert path.read_text() == FIXED


@pytest.mark.parametrize("when", ["after it was read", "while the fixed copy is written"])
def test_fix_writes_nothing_over_a_line_appended_meanwhile(project, capsys, monkeypatch, when):
    from gptlint.command import lintfile
    from gptlint.text import write

    path = project / "c.py"
    path.write_text(SHAPE)
    module, name = (
        (lintfile, "fix_source") if when == "after it was read" else (write, "_write_new")
    )
    real = getattr(module, name)

    def then_append(*args, **kwargs):
        result = real(*args, **kwargs)
        with open(path, "a") as stream:
            stream.write("max_iters = 10\n")
        return result

    monkeypatch.setattr(module, name, then_append)
    code, _, err = gptlint(capsys, "--fix", "c.py")
    assert code == 2
    assert err == (
        "gptlint: error: c.py: cannot write the fixed file: the file changed after gptlint read"
        " it (38 bytes read, 53 now): nothing written; run gptlint --fix again\n"
    )
    assert path.read_text() == SHAPE + "max_iters = 10\n"
    assert sorted(p.name for p in project.iterdir()) == ["c.py", "pyproject.toml"]


# 2. Pathological source is bounded: accepted where CPython accepts it, else GPT000 at its line


@pytest.mark.parametrize(
    "source",
    [
        "x = " + " ".join(["'a'"] * 2000) + "\n",
        "x = " + " or ".join(["a"] * 2000) + "\n",
        "x = " + " and ".join(["a"] * 2000) + "\n",
        "x = " + " ".join(["f'{1}'"] * 2000) + "\n",
        "x = " + " + ".join(["1"] * 250) + "\n",
    ],
    ids=["strings", "or", "and", "fstrings", "sum"],
)
def test_long_chains_that_python_accepts_are_linted(project, source):
    (project / "c.py").write_text("n_layer = 12\n" + source + SHAPE)
    result = gptlint_process("c.py", cwd=project)
    assert result.returncode == 1, result
    assert result.stdout.decode().startswith("c.py:5:1: GPT101 ")
    assert result.stderr == b""


def test_a_chain_too_deep_for_libcst_is_one_clear_error(project):
    (project / "c.py").write_text("n_layer = 12\nx = " + " or ".join(["a"] * 10_000) + "\n")
    result = gptlint_process("c.py", cwd=project)
    assert result.returncode == 2
    assert re.fullmatch(
        r"c\.py:2:1: GPT000 expression nested 10000 levels deep .* \(3000\)\n",
        result.stdout.decode().splitlines(keepends=True)[0],
    )


def test_a_string_concatenation_too_long_for_libcst_is_read_in_pieces(project):
    (project / "c.py").write_text("n_layer = 12\nx = " + " ".join(["'a'"] * 5000) + "\n" + SHAPE)
    result = gptlint_process("c.py", cwd=project)
    assert result.returncode == 1, result
    assert result.stdout.decode().startswith("c.py:5:1: GPT101 ")
    assert result.stderr == b""


def test_a_string_concatenation_too_long_for_libcst_without_spaces_is_named_as_gptlints_limit(
    project,
):
    (project / "c.py").write_text("n_layer = 12\nx = " + "".join(["'a'"] * 5000) + "\n")
    result = gptlint_process("c.py", cwd=project)
    assert result.returncode == 2
    assert result.stdout.decode().splitlines()[0] == (
        "c.py:2:1: GPT000 implicit string concatenation of 5,000 parts: valid Python, but more"
        " than gptlint's parser (libcst) can read (3,000), and no space or tab between its parts"
        " at least every 2,000 parts lets gptlint read it in pieces; this file is not linted"
        " (join the parts with a list and ''.join, or split the string)"
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("return 5\n", "1:1: GPT000 syntax error: 'return' outside function"),
        ("yield 5\n", "1:1: GPT000 syntax error: 'yield' outside function"),
        ("await x\n", "1:1: GPT000 syntax error: 'await' outside function"),
        ("nonlocal x\n", "1:1: GPT000 syntax error: nonlocal declaration not allowed at module level"),  # noqa: E501
        ("def f(a, a): pass\n", "1:10: GPT000 syntax error: duplicate argument 'a' in function definition"),  # noqa: E501
        ("x = 1\nfrom __future__ import annotations\n", "2:1: GPT000 syntax error: from __future__ imports must occur at the beginning of the file"),  # noqa: E501
        ("from __future__ import braces\n", "1:1: GPT000 syntax error: not a chance"),
        ("from __future__ import nope\n", "1:1: GPT000 syntax error: future feature nope is not defined"),  # noqa: E501
        ("def f():\n    x = 1\n    global x\n", "3:5: GPT000 syntax error: name 'x' is assigned to before global declaration"),  # noqa: E501
        ("*a\n", "1:1: GPT000 syntax error: can't use starred expression here"),
    ],
)  # fmt: skip
def test_files_python_would_not_compile_are_gpt000(project, capsys, source, message):
    (project / "c.py").write_text(source)
    code, out, err = gptlint(capsys, "c.py")
    assert (code, out.splitlines()[0], err) == (2, "c.py:" + message, "")


@pytest.mark.parametrize(
    "value",
    [
        "10**10**10",
        "2\n" + "max_iters = max_iters * max_iters\n" * 40,
        "len(str([0]*10**8))",
        'len(f"{[0]*10**8}")',
        "round(10**30, -10**8)",
        "-10**5000",
        "1 << 10**9",
        "9**9**9",
    ],
)
def test_evaluation_is_bounded(project, capsys, value):
    (project / "c.py").write_text(f"max_iters = {value}\n" + SHAPE)
    code, out, err = gptlint(capsys, "--select", "ALL", "c.py")
    assert code == 1 and err == ""
    assert "GPT101" in out


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ("10**10**10", 3),
        ("2\n" + "n_embd = n_embd * n_embd\n" * 40, 43),
        ("10**4000", 3),
        ("2\nn_embd **= 10**6", 4),
    ],
)
def test_a_value_too_large_to_evaluate_is_named_where_it_is_needed(project, capsys, value, line):
    (project / "c.py").write_text(f"n_layer = 12\nn_head = 8\nn_embd = {value}\nbatch_size = 8\n")
    code, out, err = gptlint(capsys, "--select", "ALL", "c.py")
    assert (code, err) == (1, "")
    assert (
        f"GPT503 GPT501 not checked: n_embd is not known without running the config: c.py:{line}"
        " (too large to evaluate statically)"
    ) in out


def test_too_large_follows_the_names_that_read_it(project):
    from gptlint.nanogpt.resolve import load_config

    (project / "c.py").write_text(
        "x = 10**10**10\nn_embd = x // 2\nout_dir = str([0]*10**8)\nn_layer = 2**20000\n"
        "n_layer = 4\nn_head = len(x)\nblock_size = 2**9999 * 2**9999\n"
    )
    config = load_config("c.py")
    assert config.origin("n_embd") == "c.py:2 (too large to evaluate statically)"
    assert config.origin("out_dir") == "c.py:3 (too large to evaluate statically)"
    assert config.origin("n_layer") == "c.py:5"  # assigned again: known
    assert config.origin("n_head") == "c.py:6 (too large to evaluate statically)"
    assert config.origin("block_size") == "c.py:7 (too large to evaluate statically)"


SHARED = (  # 10**10 elements (v, w: 10**15) to print, compare or hash; 100,001 in memory each
    "x = [0] * 100000\ny = [x] * 100000\nz = [[0] * 100000] * 100000\n"
    "t = (0,) * 100000\nu = (t,) * 100000\nv = [y] * 100000\nw = [z] * 100000\n"
)


@pytest.mark.parametrize(
    "value", ["str(y)", "f'{y}'", "'%s' % (y,)", "v == w", "{u: 1}", "v in [w]"]
)
def test_printing_comparing_or_hashing_a_shared_list_is_bounded(project, value):
    (project / "c.py").write_text(SHARED + f"out_dir = {value}\n" + SHAPE)
    result = gptlint_process("--select", "ALL", "c.py", cwd=project, timeout=60)
    assert (result.returncode, result.stderr) == (1, b"")
    assert b"GPT101" in result.stdout


def test_a_shared_list_too_large_to_print_or_compare_is_named(project):
    from gptlint.nanogpt.resolve import load_config

    (project / "c.py").write_text(SHARED + "out_dir = str(y)\neval_only = y == z\n")
    config = load_config("c.py")
    assert config.origin("out_dir") == "c.py:8 (too large to evaluate statically)"
    assert config.origin("eval_only") == "c.py:9 (too large to evaluate statically)"


@pytest.mark.parametrize("n_layer", ["10**8", "10**9", "10**14"])
def test_a_huge_layer_count_is_estimated_without_a_list_per_layer(project, n_layer):
    (project / "c.py").write_text(f"n_layer = {n_layer}\nn_head = 8\nn_embd = 512\n")
    result = gptlint_process("--select", "GPT501", "c.py", cwd=project, timeout=60)
    assert (result.returncode, result.stderr) == (1, b"")
    assert result.stdout.startswith(b"c.py:3:1: GPT501 estimated peak training memory ")
    assert b"GiB exceeds the 11.99 GiB budget of rtx4070" in result.stdout


def test_parameter_sizes_are_counted_not_listed_per_layer():
    from gptlint.runmodel.trainingrun import ModelShape

    shape = ModelShape(10**9, 8, 512, 1024, 50304, True)
    numels = shape.parameter_numels()
    assert len(numels) <= 10
    assert sum(n * k for n, k in numels.items()) == shape.num_params(non_embedding=False)


def test_implausibly_large_sizes_are_impossible_values(project, capsys):
    (project / "c.py").write_text("n_layer = 12\nn_head = 8\nn_embd = 2**63\n")
    code, out, _ = gptlint(capsys, "--select", "GPT106", "c.py")
    assert code == 1
    assert out.splitlines()[0] == (
        "c.py:3:1: GPT106 n_embd=9223372036854775808 is implausibly large (10**15 or more):"
        " every Linear and embedding layer is n_embd wide, and nothing that size can be built"
        " or run"
    )


def test_a_huge_file_is_one_clear_error(project, capsys):
    (project / "c.py").write_text("x = [" + "0, " * 700_000 + "]\n")
    code, out, _ = gptlint(capsys, "c.py")
    assert code == 2
    assert out.splitlines()[0] == (
        "c.py:1:1: GPT000 file too large to lint (2,100,007 bytes; gptlint reads configs of up to"
        " 2,000,000 bytes)"
    )


def test_a_folder_all_excluded_names_the_exclude_setting(project, capsys):
    (project / "config").mkdir()
    (project / "config" / "a.py").write_text(SHAPE)
    (project / "pyproject.toml").write_text("[tool.gptlint]\nexclude = ['*']\n")
    code, out, err = gptlint(capsys, "config")
    assert (code, out) == (2, "")
    assert err == (
        "gptlint: error: config: no config files found (every .py file here matches the"
        " exclude setting: ['*'])\n"
    )


@pytest.mark.parametrize(
    ("launch", "flags"),
    [
        ("torchrun --nproc_per_node=0 train.py", "--nproc_per_node=0"),
        ("torchrun --nproc_per_node=8 --nnodes=0 train.py", "--nproc_per_node=8 --nnodes=0"),
    ],
)
def test_a_launch_line_that_starts_no_process_is_reported(project, capsys, launch, flags):
    (project / "c.py").write_text(f"# {launch}\ngradient_accumulation_steps = 40\n")
    code, out, _ = main_output(capsys, "--select", "GPT401", "c.py")
    assert code == 1
    assert out.splitlines()[0] == (
        f"c.py:1:1: GPT401 the world size is 0 (`{flags}` in the file's comments): torchrun"
        " starts no process; --nproc_per_node and --nnodes must be at least 1"
    )


def main_output(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("named", ["c.py", "config"])
def test_a_1_gib_file_is_refused_with_its_own_size(project, capsys, named):
    (project / "config").mkdir()
    with open(project / "config" / "c.py", "wb") as sparse:
        sparse.truncate(2**30)
    code, out, _ = gptlint(capsys, "config/c.py" if named == "c.py" else "config")
    assert code == 2
    assert out.splitlines()[0] == (
        "config/c.py:1:1: GPT000 file too large to lint (1,073,741,824 bytes; gptlint reads"
        " configs of up to 2,000,000 bytes)"
    )


def test_names_are_nfkc_normalised(project, capsys):
    (project / "c.py").write_text("n_layer = 12\n\uff4e_head = 5\nn_embd = 512\n")
    _, out, _ = gptlint(capsys, "--select", "ALL", "c.py")
    assert "GPT201" not in out
    assert "n_embd=512 is not divisible by n_head=5" in out


def test_many_gptconfig_calls_and_statements_finish(project, capsys):
    calls = "".join(f"c{i} = GPTConfig(n_layer=12, n_head=8, n_embd=512)\n" for i in range(2000))
    (project / "c.py").write_text(calls + "; ".join(f"x{i} = {i}" for i in range(2000)) + "\n")
    code, _, err = gptlint(capsys, "--select", "GPT1", "c.py")
    assert (code, err) == (0, "")


# 3. Files and folders: only regular files are read; what cannot be read is named


def test_fifos_and_devices_are_named_and_never_read(project):
    (project / "config").mkdir()
    (project / "config" / "a.py").write_text(SHAPE)
    os.mkfifo(project / "config" / "fifo.py")
    (project / "config" / "zero.py").symlink_to("/dev/zero")
    (project / "config" / "random.py").symlink_to("/dev/urandom")
    os.mkfifo(project / "named.py")
    result = gptlint_process("config", "named.py", cwd=project, timeout=60)
    assert result.returncode == 2
    out = result.stdout.decode().splitlines()
    unread = "GPT000 cannot read file: not a regular file"
    assert f"config/fifo.py:1:1: {unread} (a FIFO), skipped" in out
    assert f"config/zero.py:1:1: {unread} (a device), skipped" in out
    assert f"config/random.py:1:1: {unread} (a device), skipped" in out
    assert any(line.startswith("config/a.py:3:1: GPT101 ") for line in out)
    err = result.stderr.decode()
    assert err == "gptlint: error: named.py: not a regular file or folder, skipped\n"


def test_empty_and_too_long_paths_are_errors(project, capsys):
    (project / "a.py").write_text(SHAPE)
    assert gptlint(capsys, "") == (
        2,
        "",
        "gptlint: error: '': an empty path names no file or folder\n",
    )
    long = "x" * 5000
    code, _, err = gptlint(capsys, long)
    assert (code, err) == (2, f"gptlint: error: {long}: File name too long\n")
    code, _, err = gptlint(capsys, "/".join(["y" * 200] * 40))
    assert code == 2 and err.count("\n") == 1 and "internal error" not in err


def _as_nobody(project: Path, *args: str) -> tuple[int, str]:
    """main(args) in a child process running as uid/gid 65534: exit code and stdout+stderr."""
    log = project / "log.txt"
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        code = 3
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            sys.stdout = sys.stderr = open(fd, "w", closefd=False)  # noqa: SIM115
            import gptlint.command.invocation  # noqa: F401 - loaded while Python's own files are readable

            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            code = main(["--select", "GPT000,GPT101", *args])
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status), log.read_text()


needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root to switch to an unprivileged user (uid 65534)"
)


@pytest.fixture
def open_project(monkeypatch):
    """A project folder that uid 65534 can reach (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="gptlint-hostile-", dir="/tmp"))
    folder.chmod(0o755)
    monkeypatch.chdir(folder)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(folder)


@needs_root
def test_unreadable_folder_and_file_are_reported(open_project):
    project = open_project
    config = project / "config"
    (config / "secret").mkdir(parents=True)
    (config / "a.py").write_text(SHAPE)
    (config / "locked.py").write_text(SHAPE)
    (config / "locked.py").chmod(0o000)
    (config / "secret").chmod(0o000)
    (project / "log.txt").touch()
    (project / "log.txt").chmod(0o666)
    code, log = _as_nobody(project, "config")
    assert code == 2
    lines = log.splitlines()
    assert "gptlint: error: config/secret: cannot read folder: Permission denied" in lines
    assert "config/locked.py:1:1: GPT000 cannot read file: Permission denied" in lines


@needs_root
@pytest.mark.parametrize("named", ["config", "config/private", "config/private/c.py"])
def test_a_folder_that_cannot_be_searched_names_its_pyproject(open_project, named):
    """A folder listed but not searchable (mode r--): whether its pyproject.toml sets that
    folder's settings cannot be known, which is said, not an internal error."""
    project = open_project
    (project / "config" / "private").mkdir(parents=True)
    (project / "config" / "private" / "c.py").write_text(SHAPE)
    (project / "config" / "private" / "pyproject.toml").write_text("[tool.gptlint]\n")
    (project / "config" / "private").chmod(0o444)
    (project / "log.txt").touch()
    (project / "log.txt").chmod(0o666)
    code, log = _as_nobody(project, named)
    assert code == 2
    assert "internal error" not in log
    if named == "config":  # inside a linted tree: its file is named as unreadable
        assert (
            log.splitlines()[0]
            == "config/private/c.py:1:1: GPT000 cannot read file: Permission denied"
        )
    elif named.endswith(".py"):
        assert log == "gptlint: error: config/private/c.py: Permission denied\n"
    else:
        toml = project / "config" / "private" / "pyproject.toml"
        assert log == f"gptlint: error: {toml}: cannot read: Permission denied\n"


@needs_root
def test_fix_in_a_read_only_folder_is_a_clear_error(open_project):
    project = open_project
    (project / "ro").mkdir()
    (project / "ro" / "a.py").write_text(SHAPE)
    (project / "ro" / "a.py").chmod(0o666)
    (project / "log.txt").touch()
    (project / "log.txt").chmod(0o666)
    code, log = _as_nobody(project, "--fix", "ro/a.py")
    assert code == 2
    assert "gptlint: error: ro/a.py: cannot write the fixed file: Permission denied" in log
    assert (project / "ro" / "a.py").read_text() == SHAPE


# 4. meta.pkl: bounded before anything is built


def _big_int_pickle(value: int) -> bytes:
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x80\x02}X\n\x00\x00\x00vocab_size\x8b" + struct.pack("<i", len(data)) + data + b"s."


def _laughs() -> bytes:
    """A 'billion laughs' pickle: ten levels of lists, each holding the one below ten times."""
    data = b"\x80\x02(X\x01\x00\x00\x00aq\x00" + b"h\x00" * 9 + b"lq\x01"
    for level in range(2, 12):
        data += b"(" + (b"h" + bytes([level - 1])) * 10 + b"lq" + bytes([level])
    return data + b"}q\x20X\n\x00\x00\x00vocab_sizeh\x0bs."


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_laughs(), "vocab_size must be a positive int, got a list"),
        (
            b"\x80\x04\x8e" + struct.pack("<Q", 10**12) + b"abc.",
            "not read: expected 1000000000000 bytes in a bytes8, but only 4 remain",
        ),
        (
            b"\x80\x04\x8d" + struct.pack("<Q", 16 * 2**30) + b"abc.",
            "not read: expected 17179869184 bytes in a unicodestring8, but only 4 remain",
        ),
        (
            b"\x80\x05\x96" + struct.pack("<Q", 2**40) + b"x.",
            "not read: expected 1099511627776 bytes in a bytearray8, but only 2 remain",
        ),
        (b"\x80\x02K\x05(K\x01e.", "not read: 'int' object has no attribute 'append'"),
        (b"\x80\x04\x8f(K\x01\x90}b.", "not read: 'set' object has no attribute '__dict__'"),
        (
            b"\x80\x02}X\n\x00\x00\x00vocab_size" + b"]" * 200_000 + b"KA" + b"a" * 200_000 + b"s.",
            "not read: nested more than 1,000 levels deep",
        ),
        (
            _big_int_pickle(-(10**5000)),
            "vocab_size must be a positive int, got a negative 16610-bit number (about -10^5000)",
        ),
        (
            _big_int_pickle(2**63),
            "vocab_size 9223372036854775808 is too large to be usable (over 10,000,000)",
        ),
        (
            _big_int_pickle(10**5000),
            "vocab_size a 16610-bit number (about 10^5000) is too large to be usable"
            " (over 10,000,000)",
        ),
        (
            b"\x80\x02" + b"N0" * 3_000_000 + b"N.",
            "not read: no vocab_size in the first 1,000,000 pickle opcodes of its 6,000,004 bytes",
        ),
        (
            b"\x80\x04}(\x8c\nvocab_size\x8c\x0bcollections\x8c\x0bOrderedDict\x93)R"
            + b"N0" * 3_000_000
            + b"u.",
            "not read: refused STACK_GLOBAL: only plain data is accepted (a pickle can run code)",
        ),
    ],
    ids=[
        "laughs",
        "bytes8",
        "unicode8",
        "bytearray8",
        "appends-int",
        "build-set",
        "deep",
        "negative",
        "2**63",
        "10**5000",
        "large",
        "large-global",
    ],
)
def test_hostile_meta_pkl_is_a_clean_error(tmp_path, data, reason):
    path = tmp_path / "meta.pkl"
    path.write_bytes(data)
    with pytest.raises(MetaError) as caught:
        read_meta_vocab(path)
    assert caught.value.reason == reason


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_a_large_valid_meta_pkl_gives_its_vocab_size(project, protocol):
    """A meta.pkl of tokenizer tables larger than MAX_META_BYTES is followed as a stream up to
    its vocab_size (pickle.dump writes it first), never unpickled whole."""
    chars = [chr(0x4E00 + i) for i in range(20_000)]
    meta = {"vocab_size": 20_000, "itos": dict(enumerate(c * 300 for c in chars))}
    meta["stoi"] = {c: i for i, c in enumerate(chars)}
    (project / "data" / "big").mkdir(parents=True)
    (project / "data" / "big" / "meta.pkl").write_bytes(pickle.dumps(meta, protocol=protocol))
    assert (project / "data" / "big" / "meta.pkl").stat().st_size > 4_000_000
    (project / "c.py").write_text("dataset = 'big'\nbatch_size = 4096\n")
    result = gptlint_process("--select", "GPT501", "c.py", cwd=project, timeout=60)
    assert result.stderr == b""
    assert b"with vocab_size 20000 (from data/big/meta.pkl)" in result.stdout


# 5. Settings values


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ("1e999GB", "memory size '1e999GB' is too large (over 1 PiB)"),
        ("1e999999999GB", "memory size '1e999999999GB' is too large (over 1 PiB)"),
        ("9" * 400, "memory size '" + "9" * 37 + "...' is too large (over 1 PiB)"),
        ("0.1b", "memory size '0.1b' is less than one byte"),
        ("1e-300GB", "memory size '1e-300GB' is less than one byte"),
        ("nan", "cannot read memory size 'nan' (write e.g. 12GB, 10500MiB)"),
    ],
)
def test_memory_budget_out_of_range_is_a_clear_error(project, capsys, budget, message):
    (project / "a.py").write_text(SHAPE)
    assert gptlint(capsys, "--memory-budget", budget, "a.py") == (
        2,
        "",
        f"gptlint: error: --memory-budget: {message}\n",
    )
    (project / "pyproject.toml").write_text(f'[tool.gptlint]\nmemory-budget = "{budget}"\n')
    code, out, err = gptlint(capsys, "a.py")
    assert (code, out) == (2, "")
    assert err == f"gptlint: error: {project / 'pyproject.toml'}:2: memory-budget: {message}\n"


@given(
    st.text(max_size=30)
    | st.from_regex(r"[-+]?[0-9._eE]{0,14}[ ]?(|b|k|kb|mib|mb|g|gb|gib)", fullmatch=True)
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_parse_memory_returns_a_usable_size_or_raises_value_error(text):
    try:
        size = parse_memory(text)
    except ValueError as exc:
        assert "\n" not in str(exc).replace(repr(text), "")
        return
    assert 1 <= size <= 1024**5


def test_odd_file_names_keep_every_format_one_line_per_finding(tmp_path, capsys):
    import json as json_module

    from gptlint.command.cli import main as run_cli

    names = [b"bad\xffname.py", b"new\nline.py"]
    for name in names:
        with open(os.path.join(os.fsencode(tmp_path), name), "w") as file:
            file.write("n_embd = 500\n")
    assert run_cli([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    findings = [line for line in out.splitlines() if "GPT101" in line]
    assert len(findings) == 2
    assert any("bad\\xffname.py:1:1: GPT101" in line for line in findings)
    assert any("new\\nline.py:1:1: GPT101" in line for line in findings)
    assert run_cli([str(tmp_path), "--output-format", "sarif"]) == 1
    sarif = json_module.loads(capsys.readouterr().out)
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in sarif["runs"][0]["results"]
    }
    assert {uri.rsplit("/", 1)[1] for uri in uris} == {"bad%FFname.py", "new%0Aline.py"}


def test_a_forks_gptconfig_with_a_method_and_a_too_long_dataset_name(tmp_path, capsys):
    from gptlint.command.cli import main as run_cli

    (tmp_path / ".git").mkdir()
    (tmp_path / "train.py").write_text("exec(open('configurator.py').read())\n")
    (tmp_path / "model.py").write_text(
        "from dataclasses import dataclass\n\n@dataclass\nclass GPTConfig:\n"
        "    n_head: int = 12\n    n_embd: int = 768\n\n"
        "    def __post_init__(self):\n        assert self.n_embd % self.n_head == 0\n"
    )
    config = tmp_path / "config"
    config.mkdir()
    (config / "a.py").write_text("cfg = GPTConfig(n_layer=6, n_head=6, n_embd=500)\n")
    (config / "b.py").write_text(f"dataset = '{'a' * 5000}'\nn_layer = 6\n")
    code = run_cli([str(config)])
    out, err = capsys.readouterr()
    assert "internal error" not in err and "Traceback" not in err
    assert "a.py:1:" in out and "GPT101 n_embd=500 is not divisible by n_head=6" in out
    assert code == 1


def test_broken_settings_of_one_named_folder_do_not_stop_the_others(tmp_path, capsys):
    from gptlint.command.cli import main as run_cli

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.py").write_text("n_embd = 500\n")
    (tmp_path / "b" / "pyproject.toml").write_text('[tool.gptlint]\ngpu = "nope"\n')
    assert run_cli([str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    out, err = capsys.readouterr()
    assert "a.py:1:1: GPT101" in out
    assert "b/pyproject.toml:2: gpu: unknown GPU profile 'nope'" in err


# 6. Large files: the shortcuts that make them fast change no answer
#
# A fix pass's text is read again by parsing only the statements it changed (reread.Reparser);
# the names a file reads (GPT201, GPT204) and its GPTConfig/dict presets are looked for only in
# the statements whose text can hold them (positions.statements_matching). Each is checked
# against the long way, over generated configs.

HELPER_LINES = (
    "aux_{n} = {v}",
    "aux_{n} = aux_{m} * 2 + {v}",  # reads a helper
    "aux_{n} = os.aux_{m}",  # an attribute named like a helper: not a read
    "aux_{n} = dict(aux_{m}=1)",  # a keyword named like one: not a read
    "aux_{n} = 'aux_{m}'",  # in a string: not a read
    "# aux_{m} in a comment",
    "",
    "a_{n} = 1; aux_{n} = aux_{m}",
    "if aux_{m}:\n    n_head = 8",
    "def aux_{n}():\n    return aux_{m}",
    "aux_{n} = [\n    aux_{m},  # c\n    {v},\n]",
    "cfg_{n} = dict(n_layer=4, n_head={h}, n_embd=500)",
    "cfg_{n} = {{'n_layer': 4, 'n_head': {h}, 'n_embd': 500}}",
    "conf_{n} = GPTConfig(n_layer=4, n_head={h}, n_embd=500)",
    "n_head = {h}",
    "n_embd = 500  # heads of {h}",
    "n_embed = 576",
    "learning_rat = 1e-3",
    "weight_decay = 0",
    "compile = 0",
)


@st.composite
def helper_configs(draw) -> str:
    """A config of helper values that read each other (or only seem to), presets, blocks and
    findings with fixes, in LF or CRLF."""
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines = ["import os", "n_layer = 12"]
    for n, template in enumerate(draw(st.lists(st.sampled_from(HELPER_LINES), max_size=30))):
        m = draw(st.integers(0, n + 2))
        h = draw(st.sampled_from([6, 8, 12]))
        lines.append(template.format(n=n, m=m, v=draw(st.integers(0, 99)), h=h))
    return newline.join(lines).replace("\n", newline) + newline


def _shown(result) -> list[tuple]:
    return [
        (d.code, d.line, d.col, d.end_line, d.end_col, d.message, d.fix and d.fix.description)
        for d in result.diagnostics
    ]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(helper_configs(), st.booleans())
def test_large_file_shortcuts_give_the_same_findings_and_fixes(text, unsafe):
    from unittest import mock

    from gptlint.lint.fix import fix_source
    from gptlint.lint.linter import lint_source
    from gptlint.lint.rules import keys
    from gptlint.nanogpt import configfile
    from gptlint.settings.table import Settings
    from gptlint.text.decode import decode_source
    from gptlint.text.deep import run_deep
    from gptlint.text.reread import Reparser

    settings_ = Settings(select=("ALL",))
    config = decode_source("c.py", text.encode())

    def run():
        result = lint_source(config, settings_)
        outcome = fix_source(config, settings_, unsafe)
        return _shown(result), outcome.fixed, outcome.applied, _shown(outcome.remaining)

    quick = run_deep(run)
    with (
        mock.patch.object(configfile, "statements_matching", return_value=None),
        mock.patch.object(keys, "statements_matching", return_value=None),
        mock.patch.object(Reparser, "reread", return_value=None),
    ):
        slow = run_deep(run)
    assert quick == slow


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(helper_configs())
def test_a_fix_pass_read_again_in_part_is_libcsts_tree_of_the_whole_text(text):
    import libcst as cst

    from gptlint.lint.fix import apply_fixes, chosen_fixes
    from gptlint.lint.linter import lint_source
    from gptlint.settings.table import Settings
    from gptlint.text.decode import decode_source
    from gptlint.text.deep import run_deep
    from gptlint.text.reread import Reparser
    from gptlint.text.syntax import check_syntax
    from gptlint.text.tree import parse_module

    def check():
        result = lint_source(decode_source("c.py", text.encode()), Settings())
        chosen = chosen_fixes(result.diagnostics, unsafe=True)
        if result.file is None or not chosen:
            return
        file = result.file
        fixed = apply_fixes(file, chosen)
        reparser = Reparser(file.source.text, file.module, file.statement_lines)
        reread = parse_module(check_syntax(fixed), reparser)
        assert reread.deep_equals(cst.parse_module(fixed))
        assert reread.code == fixed

    run_deep(check)


def test_a_fix_pass_reads_again_only_the_statements_it_changed():
    from gptlint.lint.fix import apply_fixes, chosen_fixes
    from gptlint.lint.linter import lint_source
    from gptlint.settings.table import Settings
    from gptlint.text.decode import decode_source
    from gptlint.text.deep import run_deep
    from gptlint.text.reread import Reparser
    from gptlint.text.syntax import check_syntax
    from gptlint.text.tree import parse_module

    helpers = "".join(f"aux_{n} = aux_{n - 1} + 1  # {n}\n" for n in range(1, 2000))
    text = f"aux_0 = 1\n{helpers}n_layer = 12\nn_head = 12\n\n# width\nn_embd = 500\n{helpers}"

    def fix_pass():
        result = lint_source(decode_source("c.py", text.encode()), Settings())
        file = result.file
        fixed = apply_fixes(file, chosen_fixes(result.diagnostics, unsafe=False))
        reparser = Reparser(file.source.text, file.module, file.statement_lines)
        return file.module, parse_module(check_syntax(fixed), reparser), fixed

    before, after, fixed = run_deep(fix_pass)
    assert fixed == text.replace("n_embd = 500", "n_embd = 480")
    kept = [old is new for old, new in zip(before.body, after.body, strict=True)]
    assert kept.count(False) == 1 and after.code == fixed


def test_statements_matching_counts_words_per_statement():
    from gptlint.text.positions import statements_matching

    text = "# a b\nx = a\ny = (\n    a + b\n)  # a\n\n# b\ndef f():\n    return b\n"
    found = statements_matching(text, [2, 3, 8], 3, re.compile(r"\w+"), {"a", "b"})
    assert found == {0: {"a": 1}, 1: {"a": 2, "b": 2}, 2: {"b": 1}}  # "# b" is before 2
    assert statements_matching(text, [2, 3], 3, re.compile(r"\w+")) is None


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(helper_configs())
def test_the_names_a_file_reads_are_what_libcsts_visitor_finds(text):
    import libcst as cst

    from gptlint.lint.rules.keys import _collect_names
    from gptlint.nanogpt.configfile import parse_config
    from gptlint.text.decode import decode_source
    from gptlint.text.deep import run_deep

    class Visitor(cst.CSTVisitor):  # how GPT201 and GPT204 found them before
        def __init__(self, targets):
            self.targets, self.names = targets, set()

        def visit_Name(self, node):
            if id(node) not in self.targets:
                self.names.add(node.value)

        def visit_Attribute(self, node):
            node.value.visit(self)
            return False

        def visit_Arg(self, node):
            node.value.visit(self)
            return False

    def both():
        file = parse_config(decode_source("c.py", text.encode()))
        targets = {id(a.target) for a in file.assignments}
        visitor, walked = Visitor(targets), set()
        file.module.visit(visitor)
        _collect_names(file.module, targets, walked)
        return visitor.names, walked

    visited, walked = run_deep(both)
    assert walked == visited


STATEMENTS = (
    "x = 1",
    "y = (1 +\n     2)  # c",
    "z = 3; w = 4",
    "a = [\n  1,\n]",
    "if a:\n    b = 1\n    # in the block\n# after it",
    "def f():\n    return 1",
    "@d\ndef g():\n    pass",
    "s = 'a' \\\n    'b'",
    "\f\nq = 5",
    "\t# a tab",
    "",
    "# comment",
    "n = 12  # trailing",
    "class C:\n\tx = 1",
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.sampled_from(STATEMENTS), min_size=1, max_size=12),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_a_text_read_again_in_part_is_libcsts_tree_of_it(statements, newline, final, random):
    """Any one digit changed anywhere: where a `Reparser` answers, its tree is the one libcst
    gives for the whole text."""
    import libcst as cst

    from gptlint.text.decode import SourceError
    from gptlint.text.positions import statement_lines
    from gptlint.text.reread import Reparser
    from gptlint.text.syntax import check_syntax
    from gptlint.text.tree import parse_module

    text = "\n".join(statements).replace("\n", newline) + (newline if final else "")
    digits = [i for i, char in enumerate(text) if char.isdigit()]
    if not digits:
        return
    at = random.choice(digits)
    changed = text[:at] + str((int(text[at]) + 1) % 10) + text[at + 1 :]
    try:
        before, after = check_syntax(text), check_syntax(changed)
    except SourceError:
        return
    module = cst.parse_module(text)
    reread = parse_module(after, Reparser(text, module, statement_lines(before.tree)))
    assert reread.deep_equals(cst.parse_module(changed))
