"""Python's cyclic garbage collector, paused while the engine runs a step on fake tensors or
plans one with Inductor.

Both make millions of short-lived objects, and each of the collector's full collections walks
every object of the process, torch's own included: about 2 s of GPT-2's cold plan, 1.3 s of a
folder of configs whose plans are cached. The engine's figures do not wait for the collector:
the tracker sees a storage go when its last reference does. What is left in reference cycles
is collected when the collector next runs.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """The collector paused inside, and running again after if it ran before (a fork made
    inside inherits the pause)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
