"""Checks made ahead by a fork beside the run: each made once, by whichever process claims it
first; what the fork made is handed to the run with what it printed; a check that warned,
raised or was not finished in the fork is made by the run, as without a fork."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import warnings

import pytest

from pytest_gptcfg.ahead import AheadChecks
from pytest_gptcfg.engine import forked

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks on Linux")


def in_fork(ahead: AheadChecks, *works) -> None:
    """`works` (name, check) made by a fork beside this process, as the plugin's does; waits
    for the fork to end, so that each test is deterministic."""
    ahead.fork = forked.Forked(lambda: [ahead.make(name, check) for name, check in works])
    while ahead.fork.running():
        time.sleep(0.01)


def pid_of_maker() -> int:
    return os.getpid()


@contextlib.contextmanager
def deadline(seconds: int):
    """TimeoutError in this (main) thread after `seconds`: a wait that should not be, failed."""

    def expire(signum, frame):
        raise TimeoutError(f"still waiting after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def ahead():
    made = AheadChecks()
    yield made
    made.close()


def test_a_check_the_fork_made_is_handed_to_the_run_with_what_it_printed(ahead, capfd):
    def check():
        print("number of parameters: 0.01M")  # through Python's stream
        os.write(2, b"from C\n")  # under it
        return {"pid": os.getpid()}

    in_fork(ahead, ("config/a.py::memory", check))
    capfd.readouterr()
    made = ahead.take("config/a.py::memory", lambda: {"pid": os.getpid()})
    assert made["pid"] != os.getpid()  # the fork's
    out, err = capfd.readouterr()  # written by the run, when it took the check
    assert out == "number of parameters: 0.01M\n"
    assert err == "from C\n"


def test_the_run_makes_a_check_the_fork_did_not_claim(ahead):
    in_fork(ahead, ("config/a.py::memory", pid_of_maker))
    assert ahead.take("config/b.py::memory", pid_of_maker) == os.getpid()


def test_a_check_the_run_claimed_is_not_made_by_the_fork(ahead, tmp_path):
    assert ahead.take("config/a.py::memory", pid_of_maker) == os.getpid()
    marker = tmp_path / "made"
    in_fork(ahead, ("config/a.py::memory", lambda: marker.write_text("made")))
    assert not marker.exists()


def test_a_check_that_warned_in_the_fork_is_made_by_the_run_with_its_warning(ahead):
    def check():
        warnings.warn("the project's model warns", UserWarning, stacklevel=1)
        return os.getpid()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # whatever the filters: any warning counts
        in_fork(ahead, ("config/a.py::memory", check))
    with pytest.warns(UserWarning, match="the project's model warns"):
        assert ahead.take("config/a.py::memory", check) == os.getpid()


def test_a_check_that_raised_in_the_fork_is_made_by_the_run_and_raises_here(ahead):
    def check():
        raise ValueError(f"raised in {os.getpid()}")

    in_fork(ahead, ("config/a.py::memory", check))
    with pytest.raises(ValueError, match=f"raised in {os.getpid()}"):
        ahead.take("config/a.py::memory", check)


def test_a_check_whose_value_cannot_be_handed_over_is_made_by_the_run(ahead):
    in_fork(ahead, ("config/a.py::memory", lambda: lambda: "not picklable"))
    assert ahead.take("config/a.py::memory", pid_of_maker) == os.getpid()


def test_a_check_the_fork_died_making_is_made_by_the_run(ahead):
    in_fork(ahead, ("config/a.py::memory", lambda: os._exit(1)))
    assert ahead.take("config/a.py::memory", pid_of_maker) == os.getpid()


def test_the_run_waits_for_a_check_the_fork_is_making(ahead, tmp_path):
    started = tmp_path / "started"

    def slow() -> int:
        started.write_text("")
        time.sleep(0.5)  # the run asks meanwhile
        return os.getpid()

    ahead.fork = forked.Forked(lambda: ahead.make("config/a.py::memory", slow))
    while not started.exists() and ahead.fork.running():
        time.sleep(0.01)
    assert ahead.take("config/a.py::memory", pid_of_maker) != os.getpid()


def test_a_check_the_run_takes_again_is_made_again_without_waiting_for_the_fork(ahead):
    ahead.fork = forked.Forked(lambda: ahead.make("config/z.py::memory", lambda: time.sleep(600)))
    assert ahead.take("config/a.py::memory", pid_of_maker) == os.getpid()
    with deadline(30):
        assert ahead.take("config/a.py::memory", lambda: "again") == "again"  # a rerun
    assert ahead.fork.running()  # not waited for


def test_a_fork_that_never_finishes_a_check_is_ended_and_the_run_makes_it(ahead, monkeypatch):
    monkeypatch.setattr(forked, "APART_TIMEOUT", 0.5)
    started = ahead.folder / "started"

    def stuck() -> None:
        started.write_text("")
        time.sleep(600)

    ahead.fork = forked.Forked(lambda: ahead.make("config/a.py::memory", stuck))
    while not started.exists():
        time.sleep(0.01)
    with deadline(30):
        assert ahead.take("config/a.py::memory", pid_of_maker) == os.getpid()
    assert not ahead.fork.running()


def test_closing_ends_the_fork_and_removes_the_folder(ahead):
    ahead.fork = forked.Forked(lambda: ahead.make("config/a.py::memory", lambda: time.sleep(600)))
    ahead.close()
    assert not ahead.fork.running()
    assert not ahead.folder.exists()
