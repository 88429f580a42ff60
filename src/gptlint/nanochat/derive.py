"""The step one nanochat invocation runs on each rank (`Derived[ChatStep]`), from its flags,
the checkout's defaults, the target GPU and the run script's earlier invocations (the
tokenizer it trains, the base model chat_sft and base_eval load).

base_train (scripts/base_train.py): `build_model_meta(depth)`, the auto total batch size
(`batchsize`), `grad_accum_steps = total_batch_size // (B * T * world)` after asserting it
divides. chat_sft: the model, `--max-seq-len`, `--device-batch-size` and `--total-batch-size`
come from the base checkpoint when not given; statically that is the same script's last
base_train run, else chat_sft.py's fallbacks (and base_train.py's default model), each said in
a note. base_eval: the checkpoint's model and sequence length, its own `--device-batch-size`,
no training, the uncompiled model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from gptlint.facts.gpus import GpuProfile
from gptlint.nanochat.batchsize import REFERENCE_DEPTH, auto_total_batch_size
from gptlint.nanochat.checkout import INHERITED, Checkout
from gptlint.nanochat.dtype import compute_dtype
from gptlint.nanochat.flagvalues import FlagValues, flag_values
from gptlint.nanochat.model import build_shape
from gptlint.nanochat.runscript import Invocation, Unknown, bare_invocation
from gptlint.nanochat.vocab import tokenizer_vocab
from gptlint.runmodel.chatrun import SCRIPTS, ChatShape, ChatStep
from gptlint.runmodel.trainingrun import Derived, Problem


@dataclass(frozen=True)
class BaseModel:
    """What a base_train run builds and trains with, whatever the world size."""

    shape: ChatShape
    device_batch_size: int
    total_batch_size: int
    fp8: bool
    origin: str


def _entry_values(checkout: Checkout, invocation: Invocation) -> FlagValues | Problem:
    entry = checkout.entry(invocation.script)
    if entry is None:
        return Problem(
            invocation.script,
            f"{checkout.root}/scripts/{invocation.script}.py is missing",
            missing=True,
        )
    return flag_values(invocation, entry)


def base_model(checkout: Checkout, invocation: Invocation, vocab: int) -> BaseModel | list[Problem]:
    """The model and batch sizes of a base_train invocation, or what stops it."""
    values = _entry_values(checkout, invocation)
    if isinstance(values, Problem):
        return [values]
    dims = [values.integer(k) for k in ("depth", "aspect_ratio", "head_dim", "max_seq_len")]
    pattern = values.get("window_pattern")
    batch = values.integer("device_batch_size")
    total = values.integer("total_batch_size")
    ratio = values.number("target_param_data_ratio")
    fp8 = values.get("fp8")
    if values.problems:
        return values.problems
    depth, aspect, head_dim, seq_len = dims
    assert depth is not None and aspect is not None and head_dim is not None
    assert seq_len is not None and batch is not None and total is not None and ratio is not None
    shape = build_shape(depth, aspect, head_dim, seq_len, str(pattern), vocab)
    if isinstance(shape, list):
        return shape
    if total == -1:
        reference = build_shape(REFERENCE_DEPTH, aspect, head_dim, seq_len, str(pattern), vocab)
        assert isinstance(reference, ChatShape)  # the same flags built `shape`
        auto = auto_total_batch_size(shape, reference, float(ratio))
        if isinstance(auto, Problem):
            return [auto]
        total = auto
    origin = (
        f"base_train at line {invocation.line}" if invocation.line else "base_train.py's defaults"
    )
    return BaseModel(shape, batch, total, bool(fp8), origin)


def _grad_accum(script: str, total: int, batch: int, seq_len: int, world: int) -> int | Problem:
    """`total_batch_size // (B * T * world)`, after the assert base_train and chat_sft make."""
    if batch < 1:
        return Problem(
            "device_batch_size",
            f"--device-batch-size={batch}: a micro-batch needs at least one sequence",
        )
    if seq_len < 1:
        return Problem(
            "max_seq_len",
            f"--max-seq-len={seq_len}: a micro-batch of no tokens ({script}.py's "
            "`total_batch_size % (B * T * world)` raises ZeroDivisionError)",
        )
    world_tokens = batch * seq_len * world
    if total % world_tokens:
        return Problem(
            "total_batch_size",
            f"{script}.py asserts: total_batch_size ({total}) must be a multiple of "
            f"{world_tokens}. (device batch {batch} x seq len {seq_len} x world {world})",
        )
    if total < world_tokens:
        return Problem("total_batch_size", f"total_batch_size ({total}) gives no micro-step")
    return total // world_tokens


def _world(invocation: Invocation, override: int | None) -> tuple[int, str] | Problem:
    if override is not None:
        if override < 1:
            return Problem("world_size", f"a world size of {override} starts no process")
        return override, f"world size {override} (given)"
    world = invocation.world
    if world.size is None:
        reason = world.unknown.reason if world.unknown else world.origin
        return Problem("world_size", f"the world size is not known: {reason}", unknown=True)
    if world.size < 1:
        return Problem("world_size", f"{world.origin} starts no process")
    return world.size, f"world size {world.size} ({world.origin})"


def _loaded_model(
    checkout: Checkout, earlier: Sequence[Invocation], vocab: int
) -> BaseModel | list[Problem]:
    """The base checkpoint chat_sft and base_eval load: the script's last base_train run,
    else base_train.py's defaults."""
    runs = [i for i in earlier if i.script == "base_train"]
    base = base_model(checkout, runs[-1] if runs else bare_invocation("base_train"), vocab)
    if isinstance(base, list) and runs:
        return [
            dataclasses.replace(
                p, message=f"the base model (base_train, line {runs[-1].line}): {p}"
            )
            for p in base
        ]
    return base


def _sft_batches(
    values: FlagValues, checkout: Checkout, base: BaseModel, from_script: bool
) -> tuple[dict[str, int], list[str]]:
    """chat_sft's max_seq_len, device_batch_size and total_batch_size: the flag, else the
    checkpoint's (the script's base_train run), else chat_sft.py's fallback."""
    inherited = {
        "max_seq_len": base.shape.seq_len,
        "device_batch_size": base.device_batch_size,
        "total_batch_size": base.total_batch_size,
    }
    fallbacks = checkout.sft_fallbacks()
    chosen: dict[str, int] = {}
    notes = []
    for name in INHERITED:
        if values.given(name):
            value = values.integer(name)
            if value is not None:
                chosen[name] = value
        elif from_script:
            chosen[name] = inherited[name]
            notes.append(f"{name}={inherited[name]} inherited from the checkpoint of {base.origin}")
        else:
            fallback = fallbacks.get(name)
            if isinstance(fallback, int) and not isinstance(fallback, bool):
                chosen[name] = fallback
                notes.append(
                    f"{name}={fallback}: chat_sft.py's fallback (no base_train run in "
                    "the script, so the checkpoint's value is not known)"
                )
            else:
                reason = fallback.reason if isinstance(fallback, Unknown) else "not found"
                values.problems.append(
                    Problem(name, f"chat_sft.py's fallback for {name}: {reason}", unknown=True)
                )
    return chosen, notes


def derive_step(
    invocation: Invocation,
    checkout: Checkout,
    gpu: GpuProfile,
    *,
    earlier: Sequence[Invocation] = (),
    world: int | None = None,
) -> Derived[ChatStep]:
    """The step of a base_train, chat_sft or base_eval invocation on `gpu`, `earlier` being
    the invocations written before it in the same run script; `world` overrides the
    launcher's world size."""
    if invocation.script not in SCRIPTS:
        return Derived(None, (Problem("script", f"{invocation.script} runs no training step"),))
    vocab = tokenizer_vocab(checkout, earlier)
    if isinstance(vocab, list):
        return Derived(None, tuple(vocab))
    size, vocab_note = vocab
    problems: list[Problem] = []
    notes = [vocab_note]
    dtype = compute_dtype(invocation, checkout, gpu)
    world_size = _world(invocation, world)
    for found in (dtype, world_size):
        if isinstance(found, Problem):
            problems.append(found)
        else:
            notes.append(found[1])
    if invocation.script == "base_train":
        step = _base_train_step(invocation, checkout, size)
    else:
        step = _loaded_step(invocation, checkout, earlier, size)
    if isinstance(step, list):
        return Derived(None, tuple(problems + step))
    model, batch, seq_len, total, more = step
    notes += more
    if problems:
        return Derived(None, tuple(problems))
    assert not isinstance(world_size, Problem) and not isinstance(dtype, Problem)
    ranks = world_size[0]
    training = invocation.script != "base_eval"
    accum = _grad_accum(invocation.script, total, batch, seq_len, ranks) if training else 1
    if not training:
        if batch < 1:
            accum = Problem("device_batch_size", f"--device-batch-size={batch} evaluates nothing")
        total = batch * seq_len * ranks
    if isinstance(accum, Problem):
        return Derived(None, (accum,))
    shape = dataclasses.replace(model.shape, seq_len=seq_len)
    fp8 = model.fp8 if invocation.script == "base_train" else False
    return Derived(
        ChatStep(
            invocation.script,
            shape,
            batch,
            ranks,
            total,
            accum,
            dtype[0],
            fp8,
            compiled=training,
            training=training,
            notes=tuple(notes),
        )
    )


_Step = tuple[BaseModel, int, int, int, list[str]]


def _base_train_step(
    invocation: Invocation, checkout: Checkout, vocab: int
) -> _Step | list[Problem]:
    base = base_model(checkout, invocation, vocab)
    if isinstance(base, list):
        return base
    return base, base.device_batch_size, base.shape.seq_len, base.total_batch_size, []


def _loaded_step(
    invocation: Invocation, checkout: Checkout, earlier: Sequence[Invocation], vocab: int
) -> _Step | list[Problem]:
    base = _loaded_model(checkout, earlier, vocab)
    if isinstance(base, list):
        return base
    from_script = any(i.script == "base_train" for i in earlier)
    notes = (
        []
        if from_script
        else [
            "no base_train run in the script: the checkpoint is taken to be base_train.py's "
            f"defaults (depth {base.shape.depth}, max_seq_len {base.shape.seq_len}, "
            f"window pattern {base.shape.window_pattern})"
        ]
    )
    values = _entry_values(checkout, invocation)
    if isinstance(values, Problem):
        return [values]
    if invocation.script == "base_eval":
        batch = values.integer("device_batch_size")
        if values.problems or batch is None:
            return values.problems
        return base, batch, base.shape.seq_len, 0, notes
    chosen, more = _sft_batches(values, checkout, base, from_script)
    if values.problems:
        return values.problems
    seq_len = chosen["max_seq_len"]
    if seq_len != base.shape.seq_len:
        more.append(
            f"max_seq_len {seq_len} differs from the model's sequence_len "
            f"{base.shape.seq_len}: the window sizes follow {seq_len} here"
        )
    return base, chosen["device_batch_size"], seq_len, chosen["total_batch_size"], notes + more


def derive_script(
    invocations: Sequence[Invocation], checkout: Checkout, gpu: GpuProfile, world: int | None = None
) -> list[tuple[Invocation, Derived[ChatStep]]]:
    """Every training or evaluation step of a run script, in order."""
    return [
        (inv, derive_step(inv, checkout, gpu, earlier=invocations[:i], world=world))
        for i, inv in enumerate(invocations)
        if inv.script in SCRIPTS
    ]
