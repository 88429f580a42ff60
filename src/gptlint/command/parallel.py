"""Worker processes for a run over many files: each lints a share of them, and the runner
reports the results in the order the files were found, as one process would.

Workers start by forking (on Linux) from a run's main thread, before any other thread of the
run exists, so they inherit the loaded modules and what the runner read first (settings,
train.py schemas); elsewhere they are spawned and import gptlint themselves. They never write:
results (diagnostics, diffs, fixed bytes) go back to the runner, which prints and writes them.
A worker ignores Ctrl-C (the runner stops the run) and exits if the runner's process goes away.
"""

from __future__ import annotations

import gc
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

START_METHOD = "fork" if sys.platform.startswith("linux") else "spawn"
"""Forked workers start in milliseconds, with everything the runner loaded; spawned ones
(macOS, where forking a process is unsafe, and Windows) import gptlint first."""

MIN_FILES_PER_WORKER = {"fork": 16, "spawn": 200}
"""Fewer files than this per worker do not pay for starting it (forking takes milliseconds,
a spawned worker spends a few tenths of a second importing libcst)."""

CHUNKS_PER_WORKER = 4
MIN_CHUNK, MAX_CHUNK = 4, 16
"""Files go to the workers in chunks of MIN_CHUNK to MAX_CHUNK files, smaller as fewer are
left (what is left over CHUNKS_PER_WORKER chunks per worker): few chunks, so that sending
them costs little, and small ones last, so that the workers finish together."""

WATCH_INTERVAL_S = 0.5
_MAX_WINDOWS_WORKERS = 61  # ProcessPoolExecutor's limit there


def cpu_count() -> int:
    """The CPUs this process may run on (its affinity mask where the system keeps one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def worker_count(jobs: int, files: int) -> int:
    """How many workers lint `files` files with at most `jobs` processes; 1 means none (lint
    in the runner's own process)."""
    workers = min(jobs, files // MIN_FILES_PER_WORKER[START_METHOD])
    if sys.platform == "win32":
        workers = min(workers, _MAX_WINDOWS_WORKERS)
    return max(1, workers)


@dataclass(frozen=True)
class Share:
    """One item's part of a chunk sent to a worker: the chunk's future and the item's index."""

    future: Future
    index: int

    def result(self) -> Any:
        """The item's result; raises what the chunk raised (BrokenProcessPool where a worker
        died), waiting for the chunk as long as it takes."""
        return self.future.result()[self.index]

    def failed(self) -> bool:
        return self.future.done() and not self.future.cancelled() and bool(self.future.exception())


class Pool:
    """`workers` worker processes. Create it from a thread that is the only one running (the
    main thread, before the run's deep thread starts): forked workers copy only that thread."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context(START_METHOD),
            initializer=_start_worker,
            initargs=(os.getpid(),),
        )

    def map(self, function: Callable[..., list], items: Sequence[Any], *args: Any) -> list[Share]:
        """Run `function(chunk, *args)` in the workers over chunks of `items` (it returns one
        result per item of its chunk); one Share per item, in order. With fork, the workers
        start here, in the calling thread."""
        shares: list[Share] = []
        # Forked workers inherit the runner's objects (libcst's classes, the schemas ...):
        # frozen, the workers' collections neither scan them nor copy their memory pages.
        frozen = START_METHOD == "fork"
        if frozen:
            gc.freeze()
        try:
            start = 0
            while start < len(items):
                left = len(items) - start
                size = math.ceil(left / (self.workers * CHUNKS_PER_WORKER))
                size = max(MIN_CHUNK, min(MAX_CHUNK, size))
                chunk = list(items[start : start + size])
                future = self._executor.submit(function, chunk, *args)
                shares.extend(Share(future, index) for index in range(len(chunk)))
                start += size
        except BaseException:  # a worker could not start (fork failed): none is left waiting
            self._stop()
            raise
        finally:
            if frozen:  # the workers started with the first chunk; the runner collects as before
                gc.unfreeze()
        return shares

    def close(self) -> None:
        """Drop the chunks no worker has started, wait for the others and stop the workers."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _stop(self) -> None:
        """Stop the workers now: those already started would otherwise wait for work that
        never comes, and the process's exit would wait for them."""
        for process in list((getattr(self._executor, "_processes", None) or {}).values()):
            process.terminate()
        self._executor.shutdown(wait=False, cancel_futures=True)


def _start_worker(parent: int) -> None:
    if hasattr(signal, "SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the runner stops the run
    watch = threading.Thread(target=_watch, args=(parent,), name="gptlint-watch", daemon=True)
    watch.start()


def _watch(parent: int) -> None:
    """Exit when the runner's process is gone (killed): a worker left waiting for work would
    keep the run's output pipe open, and whatever reads it waiting too."""
    while os.getppid() == parent:
        time.sleep(WATCH_INTERVAL_S)
    os._exit(1)
