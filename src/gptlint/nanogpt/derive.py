"""The training run nanoGPT's train.py would start for a config: one derivation, no torch.

The linter's rules, its analytical estimate and the plugin's memory check all ask the same
question — what model does train.py build, and what step does it run? — and all get the answer
here. `derive_model` follows train.py's three ways of building the model:

* `scratch`: the config's shape; vocab_size from `data/<dataset>/meta.pkl` (for nanoGPT's own
  char datasets, what their prepare.py writes there), else 50304;
* `gpt2*`: the checkpoint's shape (`PRESETS`); of the config's model keys only `dropout` is used;
* `resume`: the `model_args` saved in `<out_dir>/ckpt.pt`, read without torch.

Every path then crops the position embedding to the config's `block_size`. `derive_run` adds
the batch, precision and optimizer settings, and the world size. Each returns a `Derived`: its
result, or the problems that stop train.py, each naming the key and where its value comes
from.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal, TypedDict

from gptlint.facts.gpus import GpuProfile
from gptlint.facts.kinds import ValueKind
from gptlint.facts.units import format_gib
from gptlint.facts.values import UNKNOWN
from gptlint.nanogpt.checkpoint import CheckpointError, read_checkpoint_model_args
from gptlint.nanogpt.forkmodel import MAY_BUILD, Term, condition_holds, takes_branch
from gptlint.nanogpt.metadata import MetaError, dataset_vocab
from gptlint.nanogpt.rejects import (
    ADAMW_RANGES,
    PLAUSIBLE,
    adamw_rejects,
    dropout_rejected,
    plausible_size,
    show,
)
from gptlint.nanogpt.resolve import EffectiveConfig
from gptlint.nanogpt.rewrites import MODEL, other_model, other_optimizer
from gptlint.nanogpt.rewrites import apply as apply_rewrites
from gptlint.runmodel.estimate import parameter_copy_bytes
from gptlint.runmodel.trainingrun import (
    DEVICE_TYPE,
    GPU_DEVICE_TYPE,
    Derived,
    ModelShape,
    ModelSource,
    OptimizerArgs,
    Problem,
    StepSpec,
    TrainingRun,
)
from gptlint.text.files import real_folder

DTYPES = ("float32", "bfloat16", "float16")
"""The `dtype` values train.py accepts (its `ptdtype` table); anything else is a KeyError."""

OptimizerKey = Literal["weight_decay", "learning_rate", "beta1", "beta2", "grad_clip"]
OPTIMIZER_KEYS: tuple[OptimizerKey, ...] = (
    "weight_decay",
    "learning_rate",
    "beta1",
    "beta2",
    "grad_clip",
)
"""Keys the step uses that barely move memory: where unknown, nanoGPT's defaults stand in."""


PRESETS: dict[str, ModelShape] = {
    name: ModelShape(n_layer, n_head, n_embd, block_size=1024, vocab_size=50257, bias=True)
    for name, n_layer, n_head, n_embd in (
        ("gpt2", 12, 12, 768),
        ("gpt2-medium", 24, 16, 1024),
        ("gpt2-large", 36, 20, 1280),
        ("gpt2-xl", 48, 25, 1600),
    )
}
"""nanoGPT's `GPT.from_pretrained` shapes, smallest first."""

INIT_FROM_VALUES = ("scratch", "resume", *PRESETS)


def project_root(config_path: Path, cwd: Path) -> Path:
    """Where train.py runs: the folder holding the config's `config/` folder, else `cwd`."""
    parent = real_folder(config_path)
    return parent.parent if parent.name == "config" else cwd


class _Reader:
    """Reads typed values from a config and gathers the problems, each once per key."""

    def __init__(self, config: EffectiveConfig) -> None:
        self.config = config
        self.problems: list[Problem] = []

    def fail(self, key: str, message: str, **kind: bool) -> None:
        """Add a problem for `key` (`kind`: Problem's unknown / architecture / missing flags),
        unless `key` already has one."""
        if all(p.key != key for p in self.problems):
            self.problems.append(Problem(key, message, **kind))

    def value(self, key: str, kinds: tuple[type, ...]) -> Any:
        """`config[key]` if statically known and of one of `kinds` (bool is no number), else
        UNKNOWN with a problem."""
        value = self.config.get(key)
        if key not in self.config:
            origin = self.config.schema.origin
            self.fail(key, f"{key} is not a key of {origin}: no run to derive", missing=True)
            return UNKNOWN
        if value is UNKNOWN:
            message = f"{key} is not known without running the config: {self.config.origin(key)}"
            self.fail(key, message, unknown=True)
            return UNKNOWN
        number = any(k in (int, float) for k in kinds)
        if not isinstance(value, kinds) or (number and isinstance(value, bool)):
            expected = "int" if kinds == (int,) else "number" if number else kinds[0].__name__
            self.fail(key, f"{key}={show(value)} ({self.config.origin(key)}) must be {expected}")
            return UNKNOWN
        return value

    def positive(self, key: str) -> Any:
        value = self.value(key, (int,))
        if value is UNKNOWN:
            return UNKNOWN
        if value <= 0:
            self.fail(key, f"{key}={value} ({self.config.origin(key)}) must be positive")
            return UNKNOWN
        if value >= PLAUSIBLE:
            self.fail(key, f"{key}={show(value)} ({self.config.origin(key)}) is implausibly large")
            return UNKNOWN
        return value

    def dropout(self) -> Any:
        value = self.value("dropout", (int, float))
        if value is not UNKNOWN and dropout_rejected(value):
            origin = self.config.origin("dropout")
            self.fail("dropout", f"dropout={value!r} ({origin}) must be in [0, 1)")
            return UNKNOWN
        return value


def derive_model(
    config: EffectiveConfig,
    *,
    root: Path | None = None,
    strict: bool = False,
    own_model: bool = False,
) -> Derived[ModelSource]:
    """The model train.py builds for `config`, run from `root` (default: `project_root` of the
    config under the working directory), or the problems that stop it.

    A scratch run's `n_embd % n_head` is not checked here (the parameter count does not need
    it); `derive_run` checks it. With `strict`, a meta.pkl that cannot be read is a problem;
    otherwise the run falls back to nanoGPT's default vocab and `vocab_from` says why. With
    `own_model` the fork's own model.py will be built, so a fork's further model arguments
    are passed on (`ModelShape.extra`) rather than being a problem.
    """
    reader = _Reader(config)
    other = _other_model(config)
    if other is not None:  # said first: no key of it is nanoGPT's to read
        reader.fail("model", other, missing=True)
        return Derived(None, tuple(reader.problems))
    unread = config.schema.model_unread
    if unread is not None and not own_model:  # no model of train.py's to count or build
        reader.fail("model", unread, missing=True)
        return Derived(None, tuple(reader.problems))
    root = root if root is not None else project_root(Path(config.path), Path.cwd())
    # A fork whose train.py has no init_from always builds from scratch.
    # A fork whose train.py never reads init_from builds from scratch too.
    read = "init_from" in config and "init_from" not in config.schema.unread
    init_from = reader.value("init_from", (str,)) if read else "scratch"
    block_size = reader.positive("block_size")
    dropout = reader.dropout()
    source: ModelSource | None = None
    if init_from == "scratch":
        source = _scratch(reader, root, strict, own_model)
    elif init_from == "resume":
        source = _resume(reader, root)
    elif init_from in PRESETS:  # the fork's model arguments it hands from_pretrained too
        passes = config.schema.pretrained_passes
        handed = None if passes is None else frozenset(passes[0])
        extra = _architecture(reader, own_model, handed)
        preset = dataclasses.replace(PRESETS[init_from], extra=extra)
        source = ModelSource(preset, init_from, f"{init_from}'s checkpoint")
    elif isinstance(init_from, str) and takes_branch(init_from, config.schema.init_from_branches):
        reader.fail(
            "init_from",
            f"init_from={show(init_from)} ({config.origin('init_from')}) takes a branch of"
            f" {config.schema.origin} that gptlint does not model",
            missing=True,
        )
    elif init_from is not UNKNOWN:
        reader.fail(
            "init_from",
            f"init_from={show(init_from)} ({config.origin('init_from')}) is not one nanoGPT"
            f" accepts ({', '.join(INIT_FROM_VALUES)}): train.py never defines `model`",
        )
    if source is None or reader.problems:
        return Derived(None, tuple(reader.problems))
    if source.init_from != "scratch" and block_size > source.shape.block_size:
        reader.fail(
            "block_size",
            f"block_size={block_size} ({config.origin('block_size')}) is larger than the"
            f" {source.model_from} model's {source.shape.block_size}: nanoGPT's first forward"
            " fails its `t <= block_size` assert",
        )
        return Derived(None, tuple(reader.problems))
    shape = dataclasses.replace(source.shape, block_size=block_size, dropout=float(dropout))
    return Derived(dataclasses.replace(source, shape=shape))


def _scratch(reader: _Reader, root: Path, strict: bool, own_model: bool) -> ModelSource | None:
    config = reader.config
    n_layer, n_head, n_embd = (reader.positive(k) for k in ("n_layer", "n_head", "n_embd"))
    bias = reader.value("bias", (bool,))
    fixed = config.schema.fixed_vocab
    if fixed is not None:  # a fork whose train.py gives one whatever the data
        vocab, vocab_from = fixed[0], f"{config.schema.origin}:{fixed[1]}, whatever the dataset"
    elif "vocab_size" in config.schema:  # a fork whose train.py has a vocab_size key
        vocab, vocab_from = reader.positive("vocab_size"), config.origin("vocab_size")
    else:
        dataset = reader.value("dataset", (str,))
        if dataset is UNKNOWN:
            return None
        folder, unread = meta_folder(config)
        try:
            vocab, vocab_from = dataset_vocab(
                Path(config.path), dataset, root, strict, folder, unread
            )
        except MetaError as exc:
            reader.fail("dataset", str(exc))
            return None
    extra = _architecture(reader, own_model)
    if reader.problems:
        return None
    shape = ModelShape(n_layer, n_head, n_embd, 0, vocab, bias, extra=extra)
    return ModelSource(shape, "scratch", vocab_from)


def meta_folder(config: EffectiveConfig) -> tuple[str | None, str | None]:
    """The folder train.py reads `<dataset>/meta.pkl` under for `config` (its `data_dir`,
    `forkmodel.data_folder`; nanoGPT's `data` where it assigns none), for `dataset_vocab`; or
    None and where train.py names one that static reading cannot resolve."""
    found = config.schema.data_folder
    if found is None:
        return "data", None
    line, term = found
    kind, held = term
    where = f"{config.schema.origin}:{line}"
    folder = _known(config, term)
    if isinstance(folder, str):
        return folder, None
    if kind == "name":
        return (
            None,
            f"{where} reads meta.pkl under `{held}`, whose value static reading cannot tell",
        )
    return (
        None,
        f"{where} reads meta.pkl under `data_dir = {held}`, which static reading cannot resolve",
    )


def _architecture(
    reader: _Reader, own_model: bool, only: frozenset[str] | None = None
) -> tuple[tuple[str, Any], ...]:
    """The fork's further model arguments with their values (of those in `only`, where given:
    what train.py hands `from_pretrained`); a problem for each one the config changes from
    train.py's default (that model is not nanoGPT's)."""
    config = reader.config
    extra = []
    for key in config.schema.architecture_keys:
        if only is not None and key not in only:
            continue  # train.py does not pass it to this model
        resolved = config.resolved(key)
        if resolved is None:
            continue  # computed in train.py, not a config key
        value = resolved.value
        if value is UNKNOWN:
            reader.value(key, (object,))  # names the line that made it unknown
            continue
        changed = resolved.kind != ValueKind.DEFAULT and value != config.schema.default(key)
        if changed and not own_model:
            reader.fail(
                key,
                f"{key}={show(value)} ({config.origin(key)}) changes the model beyond"
                f" nanoGPT's: {config.schema.origin} passes {key} to its own GPTConfig, which"
                " gptlint's count and estimate do not model",
                architecture=True,
            )
        extra.append((key, value))
    return tuple(extra)


def _resume(reader: _Reader, root: Path) -> ModelSource | None:
    out_dir = reader.value("out_dir", (str,))
    if out_dir is UNKNOWN:
        return None
    out = Path(out_dir)
    checkpoint = (out if out.is_absolute() else root / out) / "ckpt.pt"
    origin = reader.config.origin("out_dir")
    if not checkpoint.is_file():
        reader.fail(
            "out_dir",
            f"init_from='resume' reads {checkpoint} (out_dir={out_dir!r}, {origin}),"
            " which does not exist",
        )
        return None
    try:
        args = read_checkpoint_model_args(checkpoint)
    except CheckpointError as exc:
        reader.fail("out_dir", str(exc))
        return None
    bad = [
        k
        for k, v in args.items()
        if not (isinstance(v, bool) if k == "bias" else plausible_size(v))
    ]
    if bad:
        shown = ", ".join(f"{k}={show(args[k])}" for k in bad)
        reader.fail("out_dir", f"{checkpoint}: model_args {shown} cannot be built")
        return None
    shape = ModelShape(**args)
    return ModelSource(shape, "resume", f"checkpoint {checkpoint}", checkpoint)


def derive_run(
    config: EffectiveConfig,
    gpu: GpuProfile,
    *,
    world_size: int = 1,
    root: Path | None = None,
    compile: bool | None = None,
    strict: bool = False,
    own_model: bool = False,
    model: Derived[ModelSource] | None = None,
) -> Derived[TrainingRun]:
    """The run train.py starts for `config` on `gpu` with `world_size` processes, or the
    problems that stop it (see `derive_model` for `root`, `strict` and `own_model`; `model`
    is its answer where the caller has it already).

    `compile` overrides the config's. train.py's default dtype is bfloat16 where the GPU has it
    and float16 (with a GradScaler) elsewhere: a dtype that comes from the default follows
    the target GPU.
    """
    if model is None:
        model = derive_model(config, root=root, strict=strict, own_model=own_model)
    config, rewritten = apply_rewrites(config, world_size, _STEP_KEYS)
    reader = _Reader(config)
    batch_size = reader.positive("batch_size")
    accumulation = reader.positive("gradient_accumulation_steps")
    dtype = reader.value("dtype", (str,))
    if dtype is not UNKNOWN and dtype not in DTYPES:
        reader.fail(
            "dtype",
            f"dtype={show(dtype)} ({config.origin('dtype')}) is not one of"
            f" {', '.join(DTYPES)}: nanoGPT raises KeyError",
        )
    if compile is not None:
        compiled = compile
    elif "compile" in config:
        compiled = reader.value("compile", (bool,))
    else:  # a fork's train.py without the key: does it compile at all?
        compiled = config.schema.calls_compile
    splits = config.schema.splits_accumulation
    _check_optimizer(reader)
    optimizer = other_optimizer(config, world_size)
    if optimizer is not None:
        reader.fail("optimizer", optimizer, missing=True)
    forward = config.schema.forward_call
    if forward is not None:
        reader.fail(
            "forward",
            f"{config.schema.origin}:{forward[0]} runs its model as `{forward[1]}`, without the"
            " targets, and computes the loss outside it, not as nanoGPT's"
            " `logits, loss = model(X, Y)`",
            missing=True,
        )
    if not own_model:
        for difference in config.schema.model_differences:
            reader.fail("model", difference, architecture=True)
        builds = fork_optimizer(config)
        if builds is not None:
            reader.fail("optimizer", builds, architecture=True)
        kv = config.schema.model_kv_default
        if kv is not None and model.value is not None and model.value.shape.n_head != kv[1]:
            reader.fail(
                "model",
                f"{kv[2]} builds the model with {kv[0]}={kv[1]}, its GPTConfig default (train.py"
                f" does not pass {kv[0]}): grouped-query attention, with key and value"
                f" projections of {kv[1]} heads, not nanoGPT's {model.value.shape.n_head}",
                architecture=True,
            )
    source = model.value
    problems = [*model.problems, *reader.problems]
    if source is None or problems:
        return Derived(None, tuple(problems))
    if source.init_from == "scratch" and source.shape.n_embd % source.shape.n_head:
        s = source.shape
        problem = Problem(
            "n_embd",
            f"n_embd={s.n_embd} is not divisible by n_head={s.n_head}: nanoGPT's model"
            " asserts `n_embd % n_head == 0` (see the lint item for a fix)",
        )
        return Derived(None, (problem,))
    notes: tuple[str, ...] = ()
    resolved = config.resolved("dtype")
    if dtype == "bfloat16" and not gpu.bf16 and resolved and resolved.kind == ValueKind.DEFAULT:
        dtype = "float16"
        notes = (f"{gpu.name} has no bfloat16: train.py's default dtype is float16 there",)
    per_process = accumulation
    if splits:
        per_process = _micro_steps(accumulation, world_size)
        if accumulation % world_size:
            notes += (
                f"gradient_accumulation_steps={accumulation} is not divisible by the world size"
                f" {world_size} (train.py asserts it; GPT401): memory per process is that of"
                f" {per_process} micro-steps, as with the nearest multiple",
            )
    sequence = source.shape.block_size
    if config.schema.sequence_key is not None:  # the fork feeds another key's length
        key = config.schema.sequence_key
        sequence = reader.positive(key)
        if sequence is not UNKNOWN and sequence > source.shape.block_size:
            reader.fail(
                key,
                f"{key}={sequence} ({config.origin(key)}) is longer than the model's"
                f" block_size {source.shape.block_size}: its forward asserts `t <= block_size`",
            )
        if reader.problems:
            return Derived(None, tuple(reader.problems))
        notes += (
            f"the sequence length is {key}={sequence} ({config.origin(key)}): train.py's"
            f" batches are data[i:i+{key}]",
        )
    loop = config.schema.loop
    notes += (loop.note,) if loop.note else ()
    notes += _unread_notes(config)
    spec = StepSpec(
        shape=source.shape,
        batch_size=batch_size,
        block_size=sequence,
        gradient_accumulation_steps=per_process,
        dtype=dtype,
        compile=compiled,
        eval_only=config.acted_on("eval_only") is True,
        keeps_logits=loop.keeps_logits,
        **_optimizer(config),
    )
    settled: dict[str, Any] = {key: getattr(spec, key) for key in OPTIMIZER_KEYS}
    spec = dataclasses.replace(spec, optimizer_args=optimizer_args(config, settled))
    notes += tuple(f"{key}={show(config.get(key))} ({config.origin(key)})" for key in rewritten)
    if world_size > 1 and not spec.eval_only:
        notes += (ddp_uncounted(spec, world_size),)
    run = TrainingRun(spec, source, accumulation, world_size, notes, splits, rewritten)
    return Derived(run)


def ddp_uncounted(spec: StepSpec, world_size: int) -> str:
    """What the memory of one of `world_size` DDP processes leaves out."""
    buckets = format_gib(parameter_copy_bytes(spec))
    return (
        f"this is the memory of one of {world_size} processes, without DDP's gradient buckets"
        f" (another copy of the gradients: {buckets}) and NCCL's buffers"
    )


_STEP_KEYS = frozenset(
    {"batch_size", "gradient_accumulation_steps", "dtype", "compile", *OPTIMIZER_KEYS}
)
"""The keys derive_run reads: train.py's rewrites of them are followed
(`gptlint.nanogpt.rewrites`)."""


_UNREAD_MEANS = {"eval_only": "the run trains", "init_from": "the model is built from scratch"}
"""What train.py does when it never reads these keys (`Schema.unread`), whatever a config says."""


def _unread_notes(config: EffectiveConfig) -> tuple[str, ...]:
    """A note for each of `_UNREAD_MEANS`'s keys the config sets but train.py never reads."""
    return tuple(
        f"{key}={show(config.get(key))} ({config.origin(key)}) is never read by"
        f" {config.schema.origin}: {means}"
        for key, means in _UNREAD_MEANS.items()
        if key in config.schema.unread and config.get(key) != config.schema.default(key)
    )


def _other_model(config: EffectiveConfig) -> str | None:
    """Where train.py builds, for `config`, a model other than nanoGPT's GPT (None: GPT). Where
    each such place is a `model = ...` of its top-level code or `if` branches, the branches
    this config takes decide (`rewrites.other_model`); one elsewhere (in a function) counts
    whatever the config."""
    found = config.schema.other_models
    if not found:
        return None
    read = {r.line for r in config.schema.rewrites if r.key == MODEL}
    if all(line in read for line, _ in found):
        return other_model(config)
    return found[0][1]


def _micro_steps(accumulation: int, world_size: int) -> int:
    """The micro-steps of one process: the global count split among the processes; where it
    does not divide (train.py's assert fails: GPT401 reports it), that of the nearest
    multiple (ties: the larger), so that the memory per process is still checked."""
    return max(1, (accumulation + world_size // 2) // world_size)


def _check_optimizer(reader: _Reader) -> None:
    """A problem for each optimizer setting AdamW would reject before the first step."""
    for key, bounds in ADAMW_RANGES.items():
        value = reader.config.get(key)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and adamw_rejects(key, value):
            origin = reader.config.origin(key)
            reader.fail(key, f"{key}={show(value)} ({origin}): AdamW raises '{bounds.error}'")


class _Optimizer(TypedDict, total=False):
    """`StepSpec`'s optimizer fields, each where the config gives it."""

    weight_decay: float
    learning_rate: float
    beta1: float
    beta2: float
    grad_clip: float


class _Unread(Exception):
    """A term of train.py (`forkmodel.Term`) whose value is not known statically."""


def _term_value(config: EffectiveConfig, term: Term, given: dict[str, Any]) -> Any:
    """What `term`, as train.py writes it, is worth for `config`: a constant as written, a
    global in `given` as given there, a key's value, a tuple of those; `_Unread` (naming the
    global or the source text) for anything else."""
    kind, held = term
    if kind == "value":
        return held
    if kind == "tuple":
        return tuple(_term_value(config, t, given) for t in held)
    if kind == "name" and held in given:
        return given[held]
    if kind == "name" and held in config.schema and config.get(held) is not UNKNOWN:
        return config.get(held)
    raise _Unread(held)


def _known(config: EffectiveConfig, term: Term, given: dict[str, Any] | None = None) -> Any:
    """`_term_value` of `term` (with nothing `given`), `UNKNOWN` where it is not known."""
    try:
        return _term_value(config, term, given or {})
    except _Unread:
        return UNKNOWN


def optimizer_args(config: EffectiveConfig, settled: dict[str, Any]) -> OptimizerArgs | None:
    """What train.py passes to the model's `configure_optimizers` for `config` (None where it
    calls none): its globals' values for this run, `DEVICE_TYPE` for `device_type`, and for
    the optimizer keys the run's `settled` values (an unknown learning rate is nanoGPT's, as
    the step's); an argument that is neither a key's known value nor a constant is said,
    with the line."""
    call = config.schema.optimizer_call
    if call is None:
        return None
    given = {"device_type": DEVICE_TYPE, **settled}
    try:
        return OptimizerArgs(
            tuple(_term_value(config, t, given) for t in call.positional),
            tuple((name, _term_value(config, t, given)) for name, t in call.keywords),
            train_mode=call.train_mode,
        )
    except _Unread as unread:
        return OptimizerArgs(
            unreadable=f"{config.schema.origin}:{call.line} passes `{unread}` to the model's"
            " configure_optimizers, whose value for this config cannot be read statically:"
            " the check cannot call it as train.py does"
        )


def fork_optimizer(config: EffectiveConfig) -> str | None:
    """Where the model's own `configure_optimizers` (the fork's model.py), called as train.py
    calls it (its `device_type` a GPU's), builds for `config` an optimizer whose state is not
    AdamW's, or may (behind an `if` static reading cannot evaluate): said with the line; None
    for AdamW."""
    fork, call = config.schema.fork_optimizers, config.schema.optimizer_call
    if fork is None or call is None:
        return None
    given = {"device_type": GPU_DEVICE_TYPE}
    env: dict[str, Any] = dict(fork.defaults)
    positional = (_known(config, t, given) for t in call.positional)
    env.update(zip(fork.parameters, positional, strict=False))
    env.update((name, _known(config, t, given)) for name, t in call.keywords)
    for build in fork.builds:
        states = [condition_holds(test, env) for test, _ in build.conditions]
        if any(
            s is not None and s != taken
            for s, (_, taken) in zip(states, build.conditions, strict=True)
        ):
            continue
        builds = MAY_BUILD if None in states else "builds"
        return (
            f"{fork.path}:{build.line} {builds} `{build.name}(...)` in the model's"
            " configure_optimizers, not nanoGPT's AdamW, whose state the estimate counts"
        )
    return None


def _optimizer(config: EffectiveConfig) -> _Optimizer:
    """The optimizer settings that are known, finite numbers (the rest keep nanoGPT's
    defaults)."""
    known = _Optimizer()
    for key in OPTIMIZER_KEYS:
        value = config.get(key)
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and abs(value) < PLAUSIBLE
        ):
            known[key] = value
    return known
