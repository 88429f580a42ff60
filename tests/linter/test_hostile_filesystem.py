"""The file system works against gptlint: special files, permissions, links, and a `--fix`
killed or raced by another writer. gptlint names what it cannot read or write (exit code 2),
reads only regular files, and never leaves a half-written file, a stray temporary file, a
broken link, changed metadata or a lost line someone else wrote.

Bad input in the files themselves (syntax, size, values, settings) is test_bad_input.py.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import stat
import sys
import tempfile
import time
from pathlib import Path

import pytest
from shapecheck import gptlint, gptlint_process

from gptlint.command.cli import main
from gptlint.text.write import write_atomically

SHAPE = "n_layer = 12\nn_head = 12\nn_embd = 512\n"
FIXED = SHAPE.replace("n_head = 12", "n_head = 8")


# 1. Special files and links among the files named or found: named, never read


def test_a_special_file_is_named_not_read(project, capsys):
    os.mkfifo(project / "pipe.py")
    (project / "b.py").write_text(SHAPE)
    code, out, err = gptlint(capsys, "pipe.py", "b.py")
    assert code == 2
    assert err == "gptlint: error: pipe.py: not a regular file or folder, skipped\n"
    assert out.startswith("b.py:3:1: GPT101")


def test_fifos_and_devices_are_named_and_never_read(project):
    (project / "config").mkdir()
    (project / "config" / "a.py").write_text(SHAPE)
    os.mkfifo(project / "config" / "fifo.py")
    (project / "config" / "zero.py").symlink_to("/dev/zero")
    (project / "config" / "random.py").symlink_to("/dev/urandom")
    os.mkfifo(project / "named.py")
    result = gptlint_process("config", "named.py", cwd=project, timeout=60)
    assert result.returncode == 2
    out = result.stdout.splitlines()
    unread = "GPT000 cannot read file: not a regular file"
    assert f"config/fifo.py:1:1: {unread} (a FIFO), skipped" in out
    assert f"config/zero.py:1:1: {unread} (a device), skipped" in out
    assert f"config/random.py:1:1: {unread} (a device), skipped" in out
    assert any(line.startswith("config/a.py:3:1: GPT101 ") for line in out)
    err = result.stderr
    assert err == "gptlint: error: named.py: not a regular file or folder, skipped\n"


def test_unreadable_file_in_a_folder(project, capsys):
    config = project / "config"
    config.mkdir()
    (config / "gone.py").symlink_to(project / "missing.py")
    (config / "ok.py").write_text(SHAPE)
    code, out, err = gptlint(capsys, "config")
    assert code == 2 and err == ""
    gone = str(Path("config") / "gone.py")
    assert f"{gone}:1:1: GPT000 cannot read file: No such file or directory" in out
    assert "ok.py:3:1: GPT101" in out


# 2. Permissions: what uid 65534 cannot read or write is named (needs root to switch user)


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


# 3. --fix keeps the file's owner, mode and links


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


# 4. --fix killed or raced: no half-written file, no stray temporary file, no lost line


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
