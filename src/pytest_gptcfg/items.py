"""Test items for one config: `::lint` (gptlint's static checks) and `::memory[<gpu>]`.

This module is pytest glue and imports no torch: the engine (`pytest_gptcfg.engine`) is
imported inside `MemoryItem.runtest` only, when a memory check runs.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest

from gptlint.facts.gpus import DEFAULT_GPU, PROFILES, GpuProfile
from gptlint.facts.kinds import MemoryMode
from gptlint.facts.units import GIB, format_gib, format_params
from gptlint.lint.context import LintContext
from gptlint.lint.diagnostics import Diagnostic
from gptlint.lint.discover import selects, walk
from gptlint.lint.linter import lint_file
from gptlint.lint.rules import RULE_CODES
from gptlint.nanogpt.derive import derive_run, fork_optimizer, project_root
from gptlint.nanogpt.forkmodel import run_folder
from gptlint.nanogpt.program import manual_attention
from gptlint.nanogpt.resolve import ConfigError, EffectiveConfig, OverrideError, load_config
from gptlint.nanogpt.schema import NANOGPT_SCHEMA, NotNanoGPTError, SchemaError
from gptlint.runmodel.estimate import estimate_memory
from gptlint.runmodel.trainingrun import Problem, TrainingRun
from gptlint.settings.pyproject import load_settings
from gptlint.settings.table import Settings, SettingsError
from gptlint.text.deep import run_deep
from pytest_gptcfg import modelfailure, report
from pytest_gptcfg.ahead import AheadChecks
from pytest_gptcfg.options import OPTIONS_KEY, SUFFIXES, Options
from pytest_gptcfg.results import MemoryResult


def is_config(path: Path, given: Path) -> bool:
    """Whether `path`, named by `--gpt-configs` or found in the folder `given` it names, is a
    config: gptlint's own choice (`gptlint.lint.discover.selects`) under the settings of its folder.
    With unreadable settings it is collected, and its items report why."""
    path = path.resolve()
    try:
        settings = load_settings(path.parent, RULE_CODES)
    except SettingsError:
        return True
    # run_deep: parsing recurses as deep as the file nests
    return run_deep(selects, path, None if path == given else given, settings)


def uncollected_configs(folder: Path) -> list[Path]:
    """The `.py` and `.sh` files gptlint finds in `folder` (`gptlint.lint.discover.walk`) that
    pytest does not collect, being no regular file: a FIFO, a device, a broken link. gptlint
    reports them; so does the plugin, through their lint items."""
    try:
        settings = load_settings(folder, RULE_CODES)
    except SettingsError:
        settings = Settings()
    found = walk(folder, settings.exclude, settings.root, suffixes=SUFFIXES)
    return [p for p in found if not os.path.isfile(p)]


T = TypeVar("T")

MAX_SIMULATED_LAYERS = 2048
"""More layers than any trained GPT (GPT-3 has 96): the step is not simulated (its cost grows
with the layer count: 100,000 layers would run for hours)."""

MAX_SIMULATED_BYTES = 64 * max(profile.usable_bytes for profile in PROFILES.values())
"""64 times the largest GPU profile's memory: a step that needs more fits no GPU by orders of
magnitude, and is refused before any torch work."""


class CheckFailed(Exception):
    """A verdict or a reason the check could not run; its text is the whole failure report."""


class GptConfigFile(pytest.File):
    """A nanoGPT config, collected without importing it."""

    def collect(self) -> Iterator[pytest.Item]:
        yield LintItem.from_parent(self, name="lint")
        try:
            gpu = self.settings().gpu
        except CheckFailed:
            gpu = self.options.gpu or DEFAULT_GPU
        yield MemoryItem.from_parent(self, name=f"memory[{gpu}]")

    @property
    def options(self) -> Options:
        return self.config.stash[OPTIONS_KEY]

    @property
    def shown_path(self) -> Path:
        """The path as messages show it: relative to the working directory when inside it."""
        try:
            return self.path.relative_to(Path.cwd())
        except ValueError:
            return self.path

    def settings(self) -> Settings:
        """`[tool.gptlint]` from the pyproject.toml nearest to the config, under the plugin's
        `--gpt-gpu`, `--gpt-memory-budget`, `--gpt-cuda-context` and `--gpt-model` (which win, as
        on gptlint's CLI); `--gpt-compile on|off` sets the config's `compile`, so that the lint
        item's estimate and the memory item check the same step."""
        options = self.options
        try:
            settings = load_settings(self.path.parent, RULE_CODES)
        except SettingsError as exc:
            raise CheckFailed(str(exc)) from None
        return settings.merged(
            {
                "gpu": options.gpu,
                "memory_budget": options.memory_budget,
                "world_size": options.world_size,
                "cuda_context": options.cuda_context,
                "model": options.model,
                "overrides": self.plugin_overrides(),
            }
        )

    def plugin_overrides(self) -> tuple[str, ...]:
        """What the plugin's options set in the file's `overrides`: `compile=` under
        `--gpt-compile on|off` (`--gpt-set` is applied by the memory item, after the
        settings' own)."""
        options = self.options
        return () if options.compile == "auto" else (f"compile={options.compile == 'on'}",)


class ConfigItem(pytest.Item):
    """Shared failure rendering: a CheckFailed is shown as its text, without a traceback."""

    parent: GptConfigFile

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CheckFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Failure headers read `config/x.py: memory[rtx4070]`."""
        return self.path, None, f"{self.parent.shown_path}: {self.name}"

    def ahead(self) -> Callable[[], object] | None:
        """This item's check, as work for the fork beside the run (`check_beside`), which makes
        it before the run reaches the item and hands it over (`checked`); None unless the
        item's check is simulated."""
        return None


class LintItem(ConfigItem):
    """Fails on error-level gptlint diagnostics; warnings and infos go to the session summary."""

    def runtest(self) -> None:
        shown = self.parent.shown_path
        try:  # run_deep: libcst and the evaluator recurse as deep as the file nests
            diagnostics = run_deep(lint_file, shown, self.parent.settings())
        except NotNanoGPTError as exc:
            pytest.skip(str(exc))
        except (SettingsError, SchemaError) as exc:
            raise CheckFailed(f"{shown}: not linted: {exc}") from None
        judge_lint(self, shown, diagnostics)


def judge_lint(item: pytest.Item, shown: Path, diagnostics: Sequence[Diagnostic]) -> None:
    """A lint item's verdict on a file's diagnostics: warnings and infos to the session
    summary; with an error, a failure listing every finding and the `gptlint --fix` that
    applies."""
    errors = [d for d in diagnostics if d.severity == "error"]
    item.user_properties.append(
        (report.LINT_KEY, [f"{d} [{d.severity}]" for d in diagnostics if d not in errors])
    )
    if errors:
        lines = [f"{_findings(diagnostics)} in {shown}:"]
        lines += [f"  {d} [{d.severity}]" for d in diagnostics]
        safety = {d.fix.safety for d in diagnostics if d.fix is not None}
        if safety:
            flags = "--fix" if "safe" in safety else "--fix --unsafe-fixes"
            lines.append(f"  fix with: gptlint {flags} {shown}")
        raise CheckFailed("\n".join(lines))


@dataclasses.dataclass(frozen=True)
class ProjectModel:
    """A project's model file to build, and the folder its training script runs from (the
    first entry of the run's import path: the model's own imports are found from there; None
    where no training script of the project was found)."""

    path: Path
    run_from: Path | None


class MemoryItem(ConfigItem):
    """Runs the config's training step (measured on CUDA or simulated) against the budget."""

    def runtest(self) -> None:
        options, path = self.parent.options, str(self.parent.shown_path)
        settings = self.parent.settings()
        profile = settings.profile()
        budget = settings.budget()
        try:
            step, model = self._step(options, settings, profile)
            # The torch boundary: the engine imports torch, so it is imported here, once a
            # config's run is known, never when the plugin loads or collects configs.
            from pytest_gptcfg.engine import check as engine

            step = self._with_model(step, model, engine)
            mode, device = resolve_device(options.mode, engine.import_torch())
        except CheckFailed as exc:
            self._record(report.memory_record(path, profile, budget, error=str(exc)))
            raise
        if mode == "simulate":
            check_beside(self)
        try:
            result, max_batch = checked(
                self, lambda: self._check(engine, step, options, profile, budget, mode, device)
            )
        except engine.UserModelError as exc:  # the project's model stopped the run (sys.exit)
            message = f"{path}: memory check not run: {exc}"
            self._record(report.memory_record(path, profile, budget, error=message))
            raise CheckFailed(message) from None
        except Exception as exc:  # never a traceback in the user's test run
            message = _engine_failure(path, None if model is None else model.path, exc)
            self._record(report.memory_record(path, profile, budget, error=message))
            raise CheckFailed(message) from None
        self._record(report.memory_record(path, profile, budget, step, result, max_batch))
        if not result.fits:
            raise CheckFailed(report.failure_text(path, profile, step, result, max_batch or 0))

    def _check(
        self,
        engine: ModuleType,
        step: TrainingRun,
        options: Options,
        profile: GpuProfile,
        budget: int,
        mode: str,
        device: int,
    ) -> tuple[MemoryResult, int | None]:
        """Run (measure or simulate) what train.py runs for `step`: the verdict, and the
        largest batch that fits where the verdict or the report needs it (`engine` is
        `pytest_gptcfg.engine.check`, imported by the caller at the torch boundary)."""
        max_batch = None
        search = options.report is not None
        if step.spec.eval_only:  # train.py evaluates and exits: no training step runs
            from pytest_gptcfg.engine import evalstep

            result = evalstep.check_eval(step.spec, profile, budget, mode, device)
            if options.snapshot is not None and not result.fits:
                result.notes.append("no memory snapshot is written for an evaluation")
            if not result.fits or search:
                max_batch = evalstep.find_max_eval_batch_size(step.spec, profile, budget)
        else:
            snapshot = self._snapshot_path(options, profile)
            result = engine.check_memory(
                step.spec,
                profile,
                budget,
                mode=mode,
                device_index=device,
                snapshot=snapshot,
                searching=search,
            )
            if not result.fits or search:
                # a simulated check is the search's first probe: it is not run again; an
                # estimated one is searched with the estimate
                known = result if result.mode != MemoryMode.MEASURED else None
                max_batch = engine.find_max_batch_size(step.spec, profile, budget, known=known)
        return result, max_batch

    def _snapshot_path(self, options: Options, profile: GpuProfile) -> Path | None:
        """`DIR/config__x.rtx4070.pickle` for `config/x.py` under `--gpt-snapshot DIR`."""
        return snapshot_path(options, self.parent.shown_path, profile.name)

    def _step(
        self, options: Options, settings: Settings, profile: GpuProfile
    ) -> tuple[TrainingRun, ProjectModel | None]:
        """The run train.py would start for this config (gptlint's `derive_run`), with
        `[tool.gptlint] set`, then the `--gpt-set` overrides (which win) and `--gpt-compile`
        applied; and the project's model.py to build, if any (`_model`). Refuses a run too
        large to simulate."""
        shown = self.parent.shown_path
        cfg = self._config(options, settings)
        model = self._model(cfg, settings)
        try:
            world_size = run_deep(LintContext, cfg, settings).world_size.size
        except (SettingsError, SchemaError) as exc:
            raise CheckFailed(f"{shown}: memory check not run: {exc}") from None
        derived = derive_run(
            cfg,
            profile,
            world_size=world_size,
            root=project_root(self.path, self.config.invocation_params.dir),
            compile={"auto": None, "on": True, "off": False}[options.compile],
            strict=True,
            own_model=model is not None,
        )
        run = derived.value
        if run is None:
            raise CheckFailed(f"{shown}: memory check not run: {_explain(derived.problems)}")
        too_large = _too_large(run, profile)
        if too_large:
            raise CheckFailed(f"{shown}: memory check not run: too large to simulate: {too_large}")
        return run, model

    def _config(self, options: Options, settings: Settings) -> EffectiveConfig:
        """The config, resolved (nested as deep as it may be), with both kinds of overrides."""
        shown = self.parent.shown_path
        try:
            cfg = run_deep(load_config, shown, settings.defaults, settings.profile())
        except NotNanoGPTError as exc:
            pytest.skip(str(exc))
        except (ConfigError, SchemaError) as exc:
            raise CheckFailed(f"{shown}: memory check not run: {exc}") from None
        for where, overrides in (
            ("[tool.gptlint] set", settings.overrides),
            ("--gpt-set", options.overrides),
        ):
            try:
                cfg = cfg.with_overrides(overrides) if overrides else cfg
            except OverrideError as exc:
                raise CheckFailed(f"{where}: {exc}") from None
        return cfg

    def _model(self, cfg: EffectiveConfig, settings: Settings) -> ProjectModel | None:
        """`_model_py`, with the folder train.py runs from (its model imports from there)."""
        model_py = self._model_py(cfg, settings)
        if model_py is None:
            return None
        run_from = None if cfg.schema is NANOGPT_SCHEMA else run_folder(Path(cfg.schema.origin))
        return ProjectModel(model_py, run_from)

    def _model_py(self, cfg: EffectiveConfig, settings: Settings) -> Path | None:
        """The project's model.py to build: `--gpt-model` / `[tool.gptlint] model`; else, for
        a fork whose train.py passes its own model arguments (`Schema.architecture_keys`) or
        whose model.py changes memory (`Schema.model_differences`: a tanh GELU), may build an
        optimizer other than AdamW for this config (`derive.fork_optimizer`: its
        configure_optimizers is called as train.py calls it) or computes attention itself
        (`program.manual_attention`), the file that train.py imports its GPT from
        (`Schema.model_py`); else None (nanoGPT's model, built in, or
        none where train.py's cannot be read: `derive_run` says so)."""
        if settings.model:
            return settings.model
        own = cfg.schema.model_py  # the file train.py imports its GPT from
        if own is not None and (
            cfg.schema.model_differences or fork_optimizer(cfg) is not None or manual_attention(own)
        ):
            return own
        keys = cfg.schema.architecture_keys
        if not keys:
            return None
        if own is not None or cfg.schema.model_unread is not None:
            return own
        train_py = Path(cfg.schema.origin)  # the training script the schema was read from
        raise CheckFailed(
            f"{self.parent.shown_path}: memory check not run: cannot check this architecture"
            f" ({train_py.name} passes {', '.join(keys)} to its own GPTConfig): give the fork's"
            " model.py with --gpt-model"
        )

    def _with_model(
        self, run: TrainingRun, model: ProjectModel | None, engine: ModuleType
    ) -> TrainingRun:
        """`run` building the project's model.py (`_model`), if there is one, and computing
        attention as that model.py does (`program.manual_attention`)."""
        if model is None:
            return run
        model_py = model.path
        try:
            factory = engine.model_factory(model_py, model.run_from)
        except engine.UserModelError as exc:
            raise CheckFailed(f"{self.parent.shown_path}: memory check not run: {exc}") from None
        spec = dataclasses.replace(
            run.spec, model_factory=factory, manual_attention=manual_attention(model_py)
        )
        return dataclasses.replace(run, spec=spec)

    def _record(self, record: dict[str, Any]) -> None:
        self.user_properties.append((report.MEMORY_KEY, record))

    def ahead(self) -> Callable[[], object] | None:
        """This item's check (the compiled plan it needs included), as work for the fork
        beside the run (`check_beside`); None where it is measured on CUDA or writes a memory
        snapshot."""
        from pytest_gptcfg.engine import check as engine

        options = self.parent.options
        if options.snapshot is not None:
            return None
        if resolve_device(options.mode, engine.import_torch())[0] != "simulate":
            return None
        settings = self.parent.settings()
        profile, budget = settings.profile(), settings.budget()
        run, model = self._step(options, settings, profile)
        run = self._with_model(run, model, engine)
        return lambda: self._check(engine, run, options, profile, budget, "simulate", 0)


def check_beside(item: ConfigItem) -> None:
    """Once per session, from the first memory item that simulates, and not in a pytest-xdist
    worker (whose neighbours are busy with the other items): the checks of the memory items
    after `item` (`ConfigItem.ahead`, the compiled plans they need included), made in a fork
    beside this process where a core is spare (`forked.beside`), the last first, while the run
    goes on from `item`, and handed to their items when the run reaches them (`checked`). A
    check the fork does not make is the item's own to make: a head start, never a verdict."""
    from pytest_gptcfg.engine import forked

    if _AHEAD_KEY in item.config.stash or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    item.config.stash[_AHEAD_KEY] = None
    items = item.session.items
    checks: list[tuple[str, Callable[[], object]]] = []
    for later in reversed(items[items.index(item) + 1 :] if item in items else []):
        if isinstance(later, ConfigItem):
            try:
                work = later.ahead()
            except (Exception, pytest.skip.Exception):  # its own check will say why
                continue
            if work is not None:
                checks.append((later.nodeid, work))
    if not checks:
        return
    try:
        ahead = AheadChecks()
    except OSError:  # no folder to be had for the claims: each item makes its own check
        return
    works = [functools.partial(ahead.make, name, work) for name, work in checks]
    ahead.fork = forked.beside(works, autograd=True)
    item.config.add_cleanup(ahead.close)
    if ahead.fork is not None:
        item.config.stash[_AHEAD_KEY] = ahead


def checked(item: ConfigItem, check: Callable[[], T]) -> T:
    """The check of `item`: `check()`, or what the fork beside the run made of it
    (`check_beside`, `AheadChecks.take`)."""
    ahead = item.config.stash.get(_AHEAD_KEY, None)
    return check() if ahead is None else ahead.take(item.nodeid, check)


_AHEAD_KEY = pytest.StashKey[AheadChecks | None]()
"""This session's checks made ahead (`check_beside`): None where no fork makes any; absent
before the first memory item that simulates."""


def snapshot_path(options: Options, shown: Path, *tags: str) -> Path | None:
    """`DIR/config__x.TAG.pickle` for the file shown as `config/x.py` under `--gpt-snapshot
    DIR` (the folder made), the tags joined by dots; None without `--gpt-snapshot`."""
    if options.snapshot is None:
        return None
    options.snapshot.mkdir(parents=True, exist_ok=True)
    name = "__".join(shown.with_suffix("").parts).lstrip("_.")
    return options.snapshot / f"{'.'.join((name, *tags))}.pickle"


def _explain(problems: Sequence[Problem]) -> str:
    """The first problem, with how to supply a value only running the config would give (all
    such values at once, where several are unknown); an origin that carries its own
    parenthesis (`(default (nanoGPT train.py))`, `(config/x.py:3 (n * 2))`) is written once:
    `(default: nanoGPT train.py)`."""
    unknown = [p for p in problems if p.unknown]
    if not problems[0].unknown:
        return _text(problems[0])
    flags = " ".join(f"--gpt-set {p.key}=VALUE" for p in unknown)
    values = "its value" if len(unknown) == 1 else "their values"
    return f"{'; '.join(_text(p) for p in unknown)}; give {values} with {flags}"


def _text(problem: Problem) -> str:
    return _NESTED_ORIGIN.sub(r"(\1: \2)", str(problem))


_NESTED_ORIGIN = re.compile(r"\(([^()]*) \(([^()]*)\)\)")


def _findings(diagnostics: Sequence[Diagnostic]) -> str:
    """`3 gptlint findings (1 error, 2 warnings)`: the count of what the failure lists."""
    counts = {severity: 0 for severity in ("error", "warning", "info")}
    for d in diagnostics:
        counts[str(d.severity)] = counts.get(str(d.severity), 0) + 1
    parts = [f"{n} {severity}{'s' if n != 1 else ''}" for severity, n in counts.items() if n]
    total = len(diagnostics)
    return f"{total} gptlint finding{'s' if total != 1 else ''} ({', '.join(parts)})"


def _too_large(run: TrainingRun, profile: GpuProfile) -> str | None:
    """Why the run is too large to simulate (or measure), or None: more layers than
    `MAX_SIMULATED_LAYERS`, or parameters or tensors beyond `MAX_SIMULATED_BYTES`. Torch-free
    arithmetic (nanoGPT's parameter count, gptlint's estimate), so it is decided before any
    torch work."""
    spec, shape = run.spec, run.spec.shape
    params = shape.num_params(non_embedding=False)
    params_bytes = 4 * params  # fp32 parameters, as train.py keeps them
    needs = f"needs ~{format_gib(params_bytes)} for parameters alone"
    largest = f"the largest GPU profile holds {MAX_SIMULATED_BYTES // 64 / GIB:.0f} GiB"
    if shape.n_layer > MAX_SIMULATED_LAYERS:
        return (
            f"n_layer {shape.n_layer} is more than {MAX_SIMULATED_LAYERS} layers"
            f" ({format_params(params)} params; {needs})"
        )
    if params_bytes > MAX_SIMULATED_BYTES:
        return f"{format_params(params)} params ({needs}; {largest})"
    peak = estimate_memory(spec, profile).tensors
    if peak > MAX_SIMULATED_BYTES:
        return (
            f"batch_size {spec.batch_size} x block_size {spec.block_size}"
            f" (needs ~{format_gib(peak)} for its tensors at the peak; {largest})"
        )
    return None


def _engine_failure(path: str, model_py: Path | None, exc: Exception) -> str:
    """Why the check could not run the step, in one paragraph: what stopped a project's own
    model, at its line (`modelfailure.explain`), or an internal error."""
    if model_py is not None:
        return modelfailure.explain(path, model_py, exc)
    what = modelfailure.what_raised(exc)
    return (
        f"{path}: memory check failed inside pytest-gptcfg ({what}); please report it with"
        " the config"
    )


def resolve_device(mode: str, torch: ModuleType) -> tuple[str, int]:
    """The concrete mode and, on CUDA, this process's GPU: xdist worker N uses GPU N mod count."""
    if mode == "auto":
        mode = "cuda" if torch.cuda.is_available() else "simulate"
    if mode == "simulate":
        return mode, 0
    if not torch.cuda.is_available():
        raise CheckFailed(
            f"--gpt-mode=cuda, but CUDA is not available (torch {torch.__version__}); "
            "use --gpt-mode=simulate or auto"
        )
    return mode, worker_device(os.environ.get("PYTEST_XDIST_WORKER"), torch.cuda.device_count())


def worker_device(worker_id: str | None, device_count: int) -> int:
    """GPU index for an xdist worker id such as `gw3` (0 outside xdist)."""
    if not worker_id or not worker_id.startswith("gw") or device_count < 1:
        return 0
    return int(worker_id[2:]) % device_count
