"""Why a project's own model stopped the memory check, in one paragraph naming the line.

The check builds the project's model (`GPT(GPTConfig(**model_args))` of its model.py) and runs
nanoGPT's training step with it: `model.configure_optimizers(...)` with what the project's
train.py passes, `logits, loss = model(X, Y)`, `backward`, `optimizer.step()`. What stops it is
one of three things, and the advice differs:

- a limit of fake tensors: the model reads tensor values (`.item()`, `nonzero`, a shape that
  depends on data), which only a GPU run has (torch's own fake-tensor exceptions say so);
- a module the project imports that is not installed where pytest runs;
- anything else: an error in the project's code, or a fork whose model or optimizer is called
  otherwise than nanoGPT's. `--gpt-mode cuda` makes the same calls, so it is no way out.

Read from the exception's traceback (and those it was raised from): no torch needed.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from pathlib import Path

FAKE_TENSOR_LIMITS = frozenset(
    {
        "DataDependentOutputException",
        "DynamicOutputShapeException",
        "GuardOnDataDependentSymNode",
        "UnsupportedOperatorException",
        "UnsupportedFakeTensorException",
    }
)
"""torch's exceptions for what fake tensors cannot do (`torch._subclasses.fake_tensor`,
`torch.fx.experimental.symbolic_shapes`), by class name."""

NANOGPT_CALLS = (
    "`GPT(GPTConfig(**model_args))`, `model.configure_optimizers(...)` with what train.py"
    " passes, `logits, loss = model(X, Y)`"
)
"""The calls the check makes to a project's model, as nanoGPT's train.py makes them (the
optimizer's arguments: the project's train.py's, `trainstep.make_optimizers`)."""


def explain(path: str, model_py: Path, exc: BaseException) -> str:
    """`path`'s memory check, stopped by `exc` while running the model of `model_py`."""
    what = what_raised(exc)
    frame = _innermost_frame(exc, model_py.parent)
    at = f" at {_shown(frame)}" if frame is not None else ""
    if is_fake_tensor_limit(exc):
        return (
            f"{path}: memory check not run: the project's model ({model_py}) could not be run"
            f" on fake tensors ({what}){at}; a forward that depends on tensor values"
            " (`.item()`, `nonzero`, data-dependent shapes) can only be measured: run with"
            " --gpt-mode cuda on a GPU"
        )
    missing = next((e for e in _chain(exc) if isinstance(e, ModuleNotFoundError)), None)
    if missing is not None and missing.name:
        return (
            f"{path}: memory check not run: the project's model ({model_py}) imports"
            f" {missing.name!r}{at}, which is not installed where pytest runs: install the"
            " project's requirements in this environment"
        )
    if frame is None:  # raised where the check calls into the project's code
        frame = _innermost_frame(exc, None)
        at = f" at {_shown(frame)}" if frame is not None else ""
    return (
        f"{path}: memory check not run: {what}{at}, while the check ran the project's model"
        f" ({model_py}) as nanoGPT's train.py does ({NANOGPT_CALLS}); not a limit of fake"
        " tensors (--gpt-mode cuda makes the same calls): an error in the project's code, or"
        " a model or optimizer its train.py calls otherwise, which the check cannot run"
    )


def is_fake_tensor_limit(exc: BaseException) -> bool:
    """Whether `exc`, or one it was raised from, is torch's word that fake tensors cannot go on."""
    return any(
        type(e).__name__ in FAKE_TENSOR_LIMITS and type(e).__module__.startswith("torch")
        for e in _chain(exc)
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then the exceptions it was raised from or while handling, innermost last."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _innermost_frame(exc: BaseException, folder: Path | None) -> traceback.FrameSummary | None:
    """The innermost frame, across `exc`'s chain, of a file under `folder` (the project's own
    files, not an environment inside it); with no `folder`, of any file (not code made at run
    time, such as a dataclass's `__init__`)."""
    found = None
    root = folder.resolve() if folder is not None else None
    for e in _chain(exc):
        for frame in reversed(traceback.extract_tb(e.__traceback__)):
            if frame.filename.startswith("<"):
                continue
            if root is None or _under(Path(frame.filename), root):
                found = frame
                break
    return found


def _under(file: Path, root: Path) -> bool:
    try:
        relative = file.resolve().relative_to(root)
    except (OSError, ValueError):
        return False
    return not {"site-packages", "dist-packages"} & set(relative.parts)


def _shown(frame: traceback.FrameSummary) -> str:
    line = (frame.line or "").strip()
    return f"{frame.filename}:{frame.lineno}" + (f" (`{line}`)" if line else "")


def what_raised(exc: BaseException) -> str:
    """`TypeError: its message's first line` (the type alone where it has none)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
