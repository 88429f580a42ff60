"""A folder of many configs is linted by worker processes (`--jobs`, default one per CPU): what
the user sees (stdout, stderr, exit code, fixed files) is what one process gives."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gptlint.command import parallel
from gptlint.command.cli import main
from gptlint.nanogpt import schema

pytestmark = pytest.mark.skipif(
    parallel.START_METHOD != "fork", reason="workers are forked on Linux only"
)

FORK_TRAIN_PY = """\
out_dir = 'out'
dataset = 'openwebtext'
gradient_accumulation_steps = 8
batch_size = 8
block_size = 1024
n_layer = 8
n_head = 8
n_embd = 512
n_kv_head = 2
dropout = 0.0
bias = False
learning_rate = 6e-4
max_iters = 5000
lr_decay_iters = 5000
dtype = 'bfloat16'
compile = True
config_keys = [k for k, v in globals().items() if not k.startswith('_')]
exec(open('configurator.py').read())
"""

SHAPES = ((12, 12, 768), (12, 12, 512), (6, 6, 384), (8, 8, 600), (24, 16, 1024), (4, 4, 130))


def config_text(number: int) -> str:
    """A nanoGPT-style config; across numbers: clean ones, GPT101 (safe fix), a memory
    overrun (unsafe fix), a misspelt key, a `# noqa`, an import."""
    n_layer, n_head, n_embd = SHAPES[number % len(SHAPES)]
    lines = [f"# config {number}\n"]
    if number % 7 == 3:
        lines.append("import time\nwandb_run_name = 'run-' + str(time.time())\n")
    lines.append(f"batch_size = {(4, 12, 64)[number % 3]}\nblock_size = 1024\n")
    lines.append(f"n_layer = {n_layer}\nn_head = {n_head}\n")
    noqa = "  # noqa: GPT101" if number % 11 == 5 else ""
    lines.append(f"n_embd = {n_embd}{noqa}\n")
    if number % 9 == 4:
        lines.append(f"n_embed = {n_embd}  # typo\n")
    lines.append(f"learning_rate = {('6e-4', '1e-3')[number % 2]}\nmax_iters = 5000\n")
    return "".join(lines)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def many_configs(root: Path, count: int = 40) -> Path:
    """A project: `config/` with `count` configs, a file that is not Python, a code file (not
    linted), a subfolder with its own settings; `fork/` with its own train.py and configs."""
    write(root / "pyproject.toml", "[project]\nname = 'x'\n")
    for number in range(count):
        write(root / "config" / f"c_{number:03d}.py", config_text(number))
    write(root / "config" / "c_017_broken.py", "n_layer = 12\nn_head = = 4\n")
    write(root / "config" / "model.py", "def build():\n    return None\n")
    write(root / "config" / "t4" / "pyproject.toml", '[tool.gptlint]\ngpu = "t4"\n')
    for number in range(count // 4):
        write(root / "config" / "t4" / f"small_{number:02d}.py", config_text(number))
    write(root / "fork" / "train.py", FORK_TRAIN_PY)
    for number in range(count // 2):
        text = config_text(number) + f"n_kv_head = {(2, 3, 4)[number % 3]}\n"
        write(root / "fork" / "config" / f"f_{number:02d}.py", text)
    return root


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(many_configs(tmp_path))
    return tmp_path


@pytest.fixture
def pools(monkeypatch) -> list[int]:
    """The number of workers of each pool the runs start."""
    started: list[int] = []
    original = parallel.Pool.__init__

    def init(self, workers: int) -> None:
        started.append(workers)
        original(self, workers)

    monkeypatch.setattr(parallel.Pool, "__init__", init)
    return started


def gptlint(capsysbinary, *args: str) -> tuple[int, bytes, bytes]:
    code = main(list(args))
    out, err = capsysbinary.readouterr()
    return code, out, err


def in_one_and_in_two(capsysbinary, pools, *args: str) -> tuple[int, bytes, bytes]:
    """The run's exit code, stdout and stderr, the same with --jobs 1 and with two workers."""
    one = gptlint(capsysbinary, "--jobs", "1", *args)
    assert pools == []
    two = gptlint(capsysbinary, "--jobs", "2", *args)
    assert pools == [2]
    pools.clear()
    assert two == one
    return one


@pytest.mark.parametrize("output_format", ["text", "json", "github", "sarif"])
@pytest.mark.parametrize("statistics", [False, True])
def test_every_output_format_is_the_same_with_workers(
    project, capsysbinary, pools, output_format, statistics
):
    args = ["--output-format", output_format, *(["--statistics"] if statistics else [])]
    code, out, err = in_one_and_in_two(capsysbinary, pools, *args, "config", "fork")
    assert code == 2  # the broken file: an error, named with its line
    assert err == b""
    if output_format == "text" and not statistics:
        assert b"config/c_017_broken.py:2:10: GPT000 syntax error" in out
        assert b"fork/config/f_01.py" in out and b"config/t4/small_01.py" in out
        assert b"config/model.py" not in out


def test_the_order_of_the_named_paths_is_kept(project, capsysbinary, pools):
    paths = ["fork", "config/c_005.py", "config", "config/c_005.py", "missing", "config/t4"]
    code, out, err = in_one_and_in_two(capsysbinary, pools, *paths)
    assert code == 2
    assert err == b"gptlint: error: missing: no such file or directory\n"
    lines = out.decode().splitlines()
    assert lines[0].startswith("fork/config/f_01.py:")
    assert next(line for line in lines if not line.startswith(("fork/", "  "))).startswith(
        "config/c_005.py:"
    )


def test_exit_codes_follow_the_findings(project, capsysbinary, pools):
    (project / "config" / "c_017_broken.py").unlink()
    assert in_one_and_in_two(capsysbinary, pools, "config")[0] == 1
    assert in_one_and_in_two(capsysbinary, pools, "--exit-zero", "config")[0] == 0
    clean = in_one_and_in_two(capsysbinary, pools, "--select", "GPT000", "config")
    assert clean == (0, b"All checks passed!\n", b"")


def test_a_settings_error_stops_its_path_at_the_same_file(project, capsysbinary, pools):
    # n_kv_head is a key of the fork's train.py only: nanoGPT's configs reject the override
    code, out, err = in_one_and_in_two(
        capsysbinary, pools, "--set", "n_kv_head=4", "fork", "config", "config/t4/small_00.py"
    )
    assert code == 2
    assert err.count(b"unknown config key: n_kv_head") == 2
    assert b"fork/config/f_01.py" in out and b"config/c_0" not in out


def test_an_internal_error_names_its_file_alike(project, capsysbinary, pools, monkeypatch):
    from gptlint.command import lintfile

    lint_bytes = lintfile.lint_bytes

    def failing(path, *args, **kwargs):
        if path.endswith("c_023.py"):
            raise RuntimeError("a bug")
        return lint_bytes(path, *args, **kwargs)

    monkeypatch.setattr(lintfile, "lint_bytes", failing)
    code, _, err = in_one_and_in_two(capsysbinary, pools, "config")
    assert code == 2
    assert err == (
        b"gptlint: error: config/c_023.py: internal error: RuntimeError: a bug"
        b" (please report it; GPTLINT_DEBUG=1 shows the traceback)\n"
    )


@pytest.mark.parametrize("unsafe", [False, True])
def test_fix_writes_the_same_files_with_workers(tmp_path, capsysbinary, pools, monkeypatch, unsafe):
    one, two = many_configs(tmp_path / "one"), many_configs(tmp_path / "two")
    flags = ["--fix", *(["--unsafe-fixes"] if unsafe else [])]
    monkeypatch.chdir(one)
    code, out, err = gptlint(capsysbinary, "--jobs", "1", *flags, "config", "fork")
    by_one = code, out.replace(bytes(one), b"ROOT"), err
    monkeypatch.chdir(two)
    code, out, err = gptlint(capsysbinary, "--jobs", "2", *flags, "config", "fork")
    by_two = code, out.replace(bytes(two), b"ROOT"), err
    assert pools == [2]
    assert by_two == by_one
    assert by_one[1].count(b"Fixed ") == 1
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())
    fresh = many_configs(tmp_path / "fresh")
    changed = [f for f in files if (one / f).read_bytes() != (fresh / f).read_bytes()]
    assert changed and all((one / f).read_bytes() == (two / f).read_bytes() for f in files)


def test_diff_is_the_same_with_workers(project, capsysbinary, pools):
    code, out, _ = in_one_and_in_two(capsysbinary, pools, "--diff", "--unsafe-fixes", "config")
    assert code == 2 and out.count(b"--- config/") > 5
    assert (project / "config" / "c_000.py").read_text() == config_text(0)  # nothing written


def test_each_train_py_and_pyproject_is_read_once_per_run(project, capsysbinary, pools, tmp_path):
    log = tmp_path / "reads.log"
    read_train_py = schema.schema_from_train_py
    read_text = Path.read_text

    def logged(path: Path, *args, **kwargs):
        with log.open("a") as stream:
            stream.write(f"{path.name} {os.getpid()}\n")

    def schema_from_train_py(path, *args, **kwargs):
        logged(path)
        return read_train_py(path, *args, **kwargs)

    def path_read_text(self, *args, **kwargs):
        if self.name == "pyproject.toml":
            logged(self)
        return read_text(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(schema, "schema_from_train_py", schema_from_train_py)
        patch.setattr(Path, "read_text", path_read_text)
        _, out, _ = gptlint(capsysbinary, "--jobs", "2", "fork", "config")
    assert pools == [2] and b"fork/config/f_01.py" in out
    reads = sorted(line.split()[0] for line in log.read_text().splitlines())
    # train.py once; the project's pyproject.toml and config/t4's once each
    assert reads == ["pyproject.toml", "pyproject.toml", "train.py"]


def test_few_files_are_linted_in_one_process(project, capsysbinary, pools):
    gptlint(capsysbinary, "--jobs", "8", "config/t4")
    assert pools == []
    files = 2 * parallel.MIN_FILES_PER_WORKER[parallel.START_METHOD]
    assert len(list((project / "config").glob("*.py"))) >= files
    gptlint(capsysbinary, "--jobs", "8", "config")
    assert pools == [len(list((project / "config").rglob("*.py"))) // (files // 2)]


def test_jobs_is_a_setting(project, capsysbinary, pools):
    write(project / "pyproject.toml", "[tool.gptlint]\njobs = 1\n")
    gptlint(capsysbinary, "config")
    assert pools == []
    gptlint(capsysbinary, "-j", "2", "config")  # the command line wins
    assert pools == [2]
    code, out, err = gptlint(capsysbinary, "--jobs", "0", "config")
    assert (code, out, err) == (2, b"", b"gptlint: error: --jobs: must be a positive integer\n")


CRASHING_WORKER = textwrap.dedent(
    """\
    import os, sys
    from gptlint.command import lintfile
    parent, lint_bytes = os.getpid(), lintfile.lint_bytes

    def crash(path, *args, **kwargs):
        if os.getpid() != parent and path.endswith("c_013.py"):
            os._exit(3)  # as a worker killed by the system (out of memory ...) would
        return lint_bytes(path, *args, **kwargs)

    lintfile.lint_bytes = crash
    from gptlint.command.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


@pytest.mark.parametrize("fix", [False, True])
def test_a_worker_that_dies_is_reported_and_the_run_ends(project, fix):
    before = {p: p.read_bytes() for p in (project / "config").glob("*.py")}
    args = ["--jobs", "2", *(["--fix", "--unsafe-fixes"] if fix else []), "config"]
    result = subprocess.run(
        [sys.executable, "-c", CRASHING_WORKER, *args],
        capture_output=True,
        cwd=project,
        timeout=120,
    )
    assert result.returncode == 2
    err = result.stderr.decode()
    assert "gptlint: error: a worker process stopped unexpectedly: " in err
    assert "files were not linted" in err and "(--jobs 1 lints in this process alone)" in err
    assert "Traceback" not in err
    assert before[project / "config" / "c_013.py"] == (project / "config" / "c_013.py").read_bytes()
    if not fix:
        assert all(path.read_bytes() == data for path, data in before.items())


def test_without_the_crash_the_same_script_lints_everything(project):
    result = subprocess.run(
        [sys.executable, "-c", CRASHING_WORKER.replace("c_013.py", "none"), "-j", "2", "config"],
        capture_output=True,
        cwd=project,
        timeout=120,
    )
    expected = subprocess.run(
        [sys.executable, "-m", "gptlint", "-j", "1", "config"], capture_output=True, cwd=project
    )
    assert (result.returncode, result.stdout, result.stderr) == (
        expected.returncode,
        expected.stdout,
        expected.stderr,
    )


def test_fix_through_a_link_to_a_config_of_the_folder(tmp_path, capsysbinary, pools, monkeypatch):
    one, two = many_configs(tmp_path / "one"), many_configs(tmp_path / "two")
    for root in (one, two):
        (root / "config" / "a_link.py").symlink_to("c_001.py")  # linted first, then c_001.py
    monkeypatch.chdir(one)
    by_one = gptlint(capsysbinary, "--jobs", "1", "--fix", "config")
    monkeypatch.chdir(two)
    by_two = gptlint(capsysbinary, "--jobs", "2", "--fix", "config")
    assert pools == [2]
    assert by_two == by_one
    assert (one / "config" / "c_001.py").read_bytes() == (two / "config" / "c_001.py").read_bytes()


def test_fix_of_the_named_defaults_file_is_seen_by_the_configs_after_it(
    tmp_path, capsysbinary, pools, monkeypatch
):
    outcomes = []
    for name, jobs in (("one", "1"), ("two", "2")):
        root = many_configs(tmp_path / name)
        write(root / "base.py", "n_layer = 12\nn_head = 12\nn_embd = 500\n")  # GPT101, fixable
        for number in range(40):  # configs that keep the defaults' width
            write(root / "wide" / f"w_{number:02d}.py", f"batch_size = {number % 8 + 1}\n")
        monkeypatch.chdir(root)
        args = ["-j", jobs, "--fix", "--defaults", "base.py", "base.py", "wide"]
        code, out, err = gptlint(capsysbinary, *args)
        outcomes.append((code, out.replace(bytes(root), b"ROOT"), err))
        assert b"n_embd = 480" in (root / "base.py").read_bytes()
    assert outcomes[1] == outcomes[0]
    assert pools == []  # the configs wait for the fix of the file they take defaults from


SPAWNING = textwrap.dedent(
    """\
    import sys
    from gptlint.command import parallel

    parallel.START_METHOD = "spawn"  # as on macOS and Windows: workers import gptlint
    parallel.MIN_FILES_PER_WORKER["spawn"] = 2
    start = parallel.Pool.__init__

    def pool(self, workers):
        with open("pools.log", "a") as log:
            log.write(f"{workers}\\n")
        start(self, workers)

    parallel.Pool.__init__ = pool
    if __name__ == "__main__":
        from gptlint.command.cli import main

        sys.exit(main(sys.argv[1:]))
    """
)


@pytest.mark.slow
def test_spawned_workers_give_the_same_output(project):
    (project / "spawning.py").write_text(SPAWNING)
    spawned, alone = (
        subprocess.run(
            [sys.executable, *command, "--output-format", "json", "config", "fork"],
            capture_output=True,
            cwd=project,
            timeout=120,
        )
        for command in (["spawning.py", "-j", "2"], ["-m", "gptlint", "-j", "1"])
    )
    assert (project / "pools.log").read_text() == "2\n"
    assert (spawned.returncode, spawned.stdout, spawned.stderr) == (
        alone.returncode,
        alone.stdout,
        alone.stderr,
    )
    assert alone.returncode == 2 and b"c_017_broken.py" in alone.stdout


def test_when_workers_cannot_start_the_run_goes_on_in_one_process(
    project, capsysbinary, monkeypatch
):
    import errno
    import multiprocessing

    alone = gptlint(capsysbinary, "-j", "1", "config")
    fork, forks = os.fork, []

    def failing_fork() -> int:  # the second worker cannot start (EAGAIN: too many processes)
        forks.append(1)
        if len(forks) == 2:
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
        return fork()

    monkeypatch.setattr(os, "fork", failing_fork)
    assert gptlint(capsysbinary, "-j", "2", "config") == alone
    assert len(forks) == 2
    for child in multiprocessing.active_children():  # the first worker was stopped
        child.join(timeout=10)
        assert not child.is_alive()


def test_a_broken_defaults_file_named_with_fix_is_reported_alike(project, capsysbinary, pools):
    write(project / "base.py", "n_head = = 12\n")  # the defaults cannot be read: GPT000, exit 2
    args = ["--fix", "--defaults", "base.py", "base.py", "config", "fork"]
    code, out, err = in_one_and_in_two_or_one(capsysbinary, pools, *args)
    assert code == 2
    assert out.startswith(b"base.py:1:10: GPT000 syntax error")
    assert err.count(b"cannot read defaults") == 2  # config/ and fork/ stop at their first file


def in_one_and_in_two_or_one(capsysbinary, pools, *args: str) -> tuple[int, bytes, bytes]:
    """The run's exit code, stdout and stderr, the same with --jobs 1 and --jobs 2 (which may
    lint in one process)."""
    one = gptlint(capsysbinary, "--jobs", "1", *args)
    two = gptlint(capsysbinary, "--jobs", "2", *args)
    assert two == one
    return one
