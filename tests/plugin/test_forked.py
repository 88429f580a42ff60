"""The backward graph lowered in a fork while the forward's is lowered here: the same graphs,
and the work done here again whenever the fork cannot give them."""

from __future__ import annotations

import os
import sys
import time

import pytest

from pytest_gptcfg.engine import forked

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks on Linux only")


@linux
def test_a_fork_hands_back_what_its_work_returned():
    assert forked.Forked(lambda: {"wrapper": "def call(args): ...", "n": [1, 2]}).result(60) == {
        "wrapper": "def call(args): ...",
        "n": [1, 2],
    }


@linux
def test_a_result_is_read_once():
    fork = forked.Forked(lambda: 42)
    assert fork.result(60) == 42
    assert fork.result(60) is None


@linux
def test_a_large_result_comes_back_whole():
    text = "x" * (5 << 20)  # far more than a pipe holds
    assert forked.Forked(lambda: text).result(60) == text


@linux
def test_work_that_raises_hands_back_nothing():
    def fails():
        raise RuntimeError("Inductor failed")

    assert forked.Forked(fails).result(60) is None


@linux
def test_a_fork_that_takes_too_long_is_killed():
    fork = forked.Forked(lambda: time.sleep(600))
    pid = fork._pid
    start = time.monotonic()
    assert fork.result(timeout=0.5) is None
    assert time.monotonic() - start < 10
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped: no such process


@linux
def test_the_fork_writes_nothing_of_this_process_and_runs_no_exit_handler(capfd):
    print("before the fork", end="")  # buffered, not yet written
    forked.Forked(lambda: 1).result(60)
    assert capfd.readouterr().out == "before the fork"


@linux
def test_work_run_apart_runs_in_a_child_and_hands_back_what_it_returned():
    here = os.getpid()
    assert forked.run_apart(lambda: {"pid": os.getpid(), "n": [1, 2]})["pid"] != here


class Refused(Exception):
    pass


@linux
def test_an_exception_of_a_passed_kind_is_raised_here():
    def refuses():
        raise Refused("Dynamo cannot capture the model whole")

    with pytest.raises(Refused, match="cannot capture"):
        forked.run_apart(refuses, passed=(Refused,))


@linux
def test_work_that_raises_another_exception_or_dies_is_run_here_for_its_traceback(tmp_path):
    runs = tmp_path / "runs"

    def fails():
        with runs.open("a") as out:
            out.write(f"{os.getpid()} ")
        raise KeyError("the user's model")

    with pytest.raises(KeyError) as raised:
        forked.run_apart(fails, passed=(Refused,))
    pids = runs.read_text().split()
    assert len(pids) == 2 and pids[0] != str(os.getpid()) and pids[1] == str(os.getpid())
    assert any(entry.name == "fails" for entry in raised.traceback)
    here = os.getpid()
    assert forked.run_apart(lambda: os.getpid() if os.getpid() == here else os._exit(1)) == here


@linux
def test_a_child_that_never_ends_is_killed_and_the_work_done_here(monkeypatch):
    monkeypatch.setattr(forked, "APART_TIMEOUT", 0.5)
    here = os.getpid()
    start = time.monotonic()
    assert forked.run_apart(lambda: here if os.getpid() == here else time.sleep(600)) == here
    assert time.monotonic() - start < 10


def test_work_is_run_here_when_forking_is_off(monkeypatch):
    monkeypatch.setattr(forked, "ENABLED", False)
    assert forked.run_apart(os.getpid) == os.getpid()


@linux
@pytest.mark.usefixtures("no_forks")
def test_a_child_this_process_waits_for_has_its_core(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(2)))
    assert forked.run_apart(forked.spare_cores) == 1  # for the backward's lowering
    assert forked.Forked(forked.spare_cores).result(60) == 0  # beside a working process


def _until(path):
    """Wait for `path` to exist (30 s at most)."""
    deadline = time.monotonic() + 30
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


@linux
@pytest.mark.usefixtures("no_forks")
def test_a_fork_beside_the_run_works_at_the_lowest_priority_and_takes_no_core(
    monkeypatch, tmp_path
):
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(2)))
    go = tmp_path / "go"

    def niceness():
        _until(go)
        return os.nice(0)

    beside = forked.Forked(niceness, yielding=True)
    assert forked.spare_cores() == 1  # for this process's own work
    assert forked.run_apart(forked.spare_cores) == 1  # and its capture's backward
    assert forked.working_beside() == 1
    go.touch()
    assert beside.result(60) == min(19, os.nice(0) + 19)
    assert forked.working_beside() == 0
    fork = forked.beside([lambda: None])
    assert fork is not None and fork.yielding
    fork.cancel()


@linux
@pytest.mark.usefixtures("no_forks")
def test_a_process_waiting_for_anothers_work_lends_its_core(monkeypatch, tmp_path):
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(2)))
    asked, go = tmp_path / "asked", tmp_path / "go"

    def ask_twice():
        working = forked.spare_cores()  # beside this process at work
        asked.touch()
        _until(go)
        return working, forked.spare_cores()  # beside it waiting

    fork = forked.Forked(ask_twice)
    _until(asked)
    with forked.waiting():
        go.touch()
        assert fork.result(60) == (0, 1)
    assert forked.Forked(forked.spare_cores).result(60) == 0  # at work again


@linux
def test_a_fork_is_asked_once_whether_it_can_run_a_backward(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(forked, "_AUTOGRAD_FORK_REFUSED", False)
    if not torch.cuda.is_available():  # a GPU's threads, started by a backward, refuse forks
        assert forked.autograd_forks()  # without one, no device threads to refuse a fork

    def refused(self, *args, **kwargs):  # what PyTorch says in a fork once its threads run
        raise RuntimeError("Unable to handle autograd's threading in combination with fork")

    monkeypatch.setattr(torch.Tensor, "backward", refused)
    monkeypatch.setattr(forked, "spare_cores", lambda: 1)
    assert not forked.autograd_forks()
    monkeypatch.undo()  # a no is kept: the threads stay for the life of the process
    monkeypatch.setattr(forked, "_AUTOGRAD_FORK_REFUSED", True)
    monkeypatch.setattr(forked, "spare_cores", lambda: 1)
    assert not forked.autograd_forks()
    assert forked.beside([lambda: None], autograd=True) is None
    fork = forked.beside([lambda: None])
    assert fork is not None
    fork.cancel()


@linux
def test_a_fork_runs_a_backward_after_a_simulated_step(monkeypatch):
    # on a build of torch with CUDA and no GPU, a backward after a fake mode was entered made
    # a device thread, and no fork could run a backward after it (every capture then ran here)
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("with a GPU, the first backward starts its threads: no fork runs one")
    from gptlint.facts.gpus import get_profile
    from gptlint.runmodel.trainingrun import ModelShape, StepSpec
    from pytest_gptcfg.engine.check import check_memory

    spec = StepSpec(ModelShape(1, 2, 64, 64, 512, False, 0.0), 2, 64, 1, "bfloat16", False)
    profile = get_profile("rtx4070")
    assert check_memory(spec, profile, profile.usable_bytes, mode="simulate").fits
    monkeypatch.setattr(forked, "_AUTOGRAD_FORK_REFUSED", False)
    assert forked.autograd_forks()


@pytest.fixture
def lowered_here(tmp_path, monkeypatch):
    """Whether this process lowered a graph since last asked (a child's lowering is not)."""
    pytest.importorskip("torch")
    from pytest_gptcfg.engine import torchapi

    pids = tmp_path / "pids"
    generate = torchapi.generate_wrapper

    def spied(*args, **kwargs):
        with pids.open("a") as out:
            out.write(f"{os.getpid()} ")
        return generate(*args, **kwargs)

    monkeypatch.setattr(torchapi, "generate_wrapper", spied)

    def asked() -> bool:
        lowered = pids.read_text().split() if pids.exists() else []
        pids.unlink(missing_ok=True)
        return str(os.getpid()) in lowered

    return asked


@linux
@pytest.mark.slow  # a capture
def test_a_capture_is_made_here_where_a_fork_cannot_run_a_backward(monkeypatch, lowered_here):
    monkeypatch.setattr(forked, "autograd_forks", lambda: False)
    assert capture(True)["bw"]["wrapper"]
    assert lowered_here()


@linux
@pytest.mark.slow  # two captures
def test_a_capture_made_apart_is_the_one_made_here(monkeypatch, lowered_here):
    apart = capture(True)
    # made apart unless a backward already ran here on a build with an accelerator
    assert lowered_here() != forked.autograd_forks()
    monkeypatch.setattr(forked, "ENABLED", False)
    assert capture(True) == apart
    assert lowered_here()


def wait_for(fork: forked.Forked) -> None:
    """Until `fork` has ended (a minute at most)."""
    deadline = time.monotonic() + 60
    while fork.running() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture
def no_forks(monkeypatch):
    """No fork of this process at work (an earlier in-process pytest run may have left one)."""
    monkeypatch.setattr(forked, "_running", [])
    monkeypatch.setattr(forked, "_busy_beside", ())


@linux
@pytest.mark.usefixtures("no_forks")
@pytest.mark.parametrize(
    ("cpus", "workers", "spare"),
    [(2, None, 1), (1, None, 0), (2, "2", 0), (4, "2", 1), (16, "4", 3), (8, "junk", 7)],
)
def test_spare_cores_are_shared_with_xdist_workers(monkeypatch, cpus, workers, spare):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    if workers is None:
        monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    else:
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", workers)
    assert forked.spare_cores() == spare


def test_no_spare_core_when_turned_off(monkeypatch):
    monkeypatch.setattr(forked, "ENABLED", False)
    assert forked.spare_cores() == 0


@pytest.fixture
def lowerings(monkeypatch):
    """Each graph lowered in this process, as 'fw' or 'bw'; captures run here, not apart
    (`forked.run_apart`), and the backward's fork is as `spare_cores` says."""
    pytest.importorskip("torch")
    from pytest_gptcfg.engine import torchapi

    monkeypatch.setattr(forked, "run_apart", lambda work, passed=(), autograd=False: work())

    made: list[str] = []
    lower = torchapi._lowered_wrapper

    def counted(gm, example_inputs, backward):
        if os.getpid() == here:
            made.append("bw" if backward else "fw")
        return lower(gm, example_inputs, backward)

    here = os.getpid()
    monkeypatch.setattr(torchapi, "_lowered_wrapper", counted)
    return made


def capture(symbolic: bool) -> dict:
    import torch

    from gptlint.facts.kinds import AttentionKernel
    from gptlint.runmodel.trainingrun import ModelShape, StepSpec
    from pytest_gptcfg.engine import compiled

    spec = StepSpec(ModelShape(2, 2, 64, 128, 512, False, 0.1), 8, 128, 1, "bfloat16", True)
    target = compiled.nanogpt_target(spec, 8, torch.bfloat16, AttentionKernel.FLASH)
    graphs = compiled.capture_graphs(target, symbolic)
    graphs.pop("seconds")
    return graphs


@linux
@pytest.mark.slow  # three captures
@pytest.mark.parametrize("symbolic", [True, False])
def test_the_backward_lowered_in_a_fork_is_the_one_lowered_here(monkeypatch, lowerings, symbolic):
    monkeypatch.setattr(forked, "spare_cores", lambda: 1)
    ahead = capture(symbolic)
    assert lowerings == ["fw"]  # the backward's came from the fork
    monkeypatch.setattr(forked, "spare_cores", lambda: 0)
    here = capture(symbolic)
    assert lowerings == ["fw", "fw", "bw"]
    assert ahead == here  # wrappers, guards, inputs and outputs alike


@linux
@pytest.mark.slow
def test_a_fork_that_fails_leaves_the_backward_to_this_process(monkeypatch, lowerings):
    from pytest_gptcfg.engine import torchapi

    def fails(self, graph):
        raise RuntimeError("the fork's Inductor failed")

    monkeypatch.setattr(forked, "spare_cores", lambda: 1)
    monkeypatch.setattr(torchapi._BackwardAhead, "_lower", fails)
    graphs = capture(True)
    assert lowerings == ["fw", "bw"]
    assert graphs["bw"]["wrapper"] and graphs["guards"]


@linux
@pytest.mark.usefixtures("no_forks")
def test_a_working_fork_takes_a_core_in_this_process_and_in_itself(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(3)))
    assert forked.spare_cores() == 2
    sleeper = forked.Forked(lambda: time.sleep(600))
    assert forked.spare_cores() == 1
    # a fork made beside it sees this process and the sleeper working
    assert forked.Forked(forked.spare_cores).result(60) == 0
    sleeper.cancel()
    assert forked.spare_cores() == 2


@linux
@pytest.mark.usefixtures("no_forks")
def test_a_finished_fork_takes_no_core(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(2)))
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    done = forked.Forked(lambda: 1)
    wait_for(done)
    assert forked.spare_cores() == 1
    assert done.result(60) == 1  # still read after the child ended


@linux
def test_work_beside_runs_in_order_past_a_failure(tmp_path, monkeypatch):
    monkeypatch.setattr(forked, "spare_cores", lambda: 1)
    done = tmp_path / "done"

    def write(text):
        def work():
            with done.open("a") as out:
                out.write(text)

        return work

    def fails():
        raise RuntimeError("a step the fork cannot plan")

    fork = forked.beside([write("a"), fails, write("b")])
    assert fork is not None
    wait_for(fork)
    assert done.read_text() == "ab"


@linux
def test_nothing_is_forked_without_work_or_a_spare_core(monkeypatch):
    monkeypatch.setattr(forked, "spare_cores", lambda: 1)
    assert forked.beside([]) is None
    monkeypatch.setattr(forked, "spare_cores", lambda: 0)
    assert forked.beside([lambda: None]) is None
