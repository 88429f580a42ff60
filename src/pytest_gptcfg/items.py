"""Test items for one config: `::lint` (gptlint's static checks) and `::memory[<gpu>]`.

This module is pytest glue and imports no torch: the engine (`pytest_gptcfg.engine`) is
imported inside `MemoryItem.runtest` only, when a memory check runs.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gptlint.context import LintContext
from gptlint.discover import selects
from gptlint.gpus import DEFAULT_GPU, GpuProfile, get_profile
from gptlint.lint import lint_file
from gptlint.pyproject import load_settings
from gptlint.resolve import ConfigError, OverrideError, load_config
from gptlint.run import Problem, TrainingRun, derive_run, project_root
from gptlint.settings import Settings, SettingsError
from pytest_gptcfg import report
from pytest_gptcfg.options import OPTIONS_KEY, Options


def is_config(path: Path, given: Path) -> bool:
    """Whether `path`, named by `--gpt-configs` or found in the folder `given` it names, is a
    config: gptlint's own choice (`gptlint.discover.selects`) under the settings of its folder.
    With unreadable settings it is collected, and its items report why."""
    path = path.resolve()
    try:
        settings = load_settings(path.parent)
    except SettingsError:
        return True
    return selects(path, None if path == given else given, settings)


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
        `--gpt-gpu`, `--gpt-memory-budget` and `--gpt-model` (which win, as on gptlint's CLI)."""
        options = self.options
        try:
            settings = load_settings(self.path.parent)
        except SettingsError as exc:
            raise CheckFailed(str(exc)) from None
        return settings.merged(
            {"gpu": options.gpu, "memory_budget": options.memory_budget, "model": options.model}
        )


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


class LintItem(ConfigItem):
    """Fails on error-level gptlint diagnostics; warnings and infos go to the session summary."""

    def runtest(self) -> None:
        diagnostics = lint_file(self.parent.shown_path, self.parent.settings())
        errors = [d for d in diagnostics if d.severity == "error"]
        self.user_properties.append(
            (report.LINT_KEY, [f"{d} [{d.severity}]" for d in diagnostics if d not in errors])
        )
        if errors:
            lines = [f"{len(errors)} gptlint error(s) in {self.parent.shown_path}:"]
            lines += [f"  {d}" for d in diagnostics]
            safety = {d.fix.safety for d in diagnostics if d.fix is not None}
            if safety:
                flags = "--fix" if "safe" in safety else "--fix --unsafe-fixes"
                lines.append(f"  fix with: gptlint {flags} {self.parent.shown_path}")
            raise CheckFailed("\n".join(lines))


class MemoryItem(ConfigItem):
    """Runs the config's training step (measured on CUDA or simulated) against the budget."""

    def runtest(self) -> None:
        options, path = self.parent.options, str(self.parent.shown_path)
        settings = self.parent.settings()
        profile = get_profile(settings.gpu)
        budget = settings.memory_budget or profile.usable_bytes
        try:
            step = self._step(options, settings, profile)
            # The torch boundary: the engine imports torch, so it is imported here, once a
            # config's run is known, never when the plugin loads or collects configs.
            from pytest_gptcfg.engine import check as engine

            step = self._with_model(step, settings, engine)
            mode, device = _device(options.mode, engine.import_torch())
        except CheckFailed as exc:
            self._record(report.memory_record(path, profile, budget, error=str(exc)))
            raise
        snapshot = self._snapshot_path(options, profile)
        result = engine.check_memory(
            step.spec, profile, budget, mode=mode, device_index=device, snapshot=snapshot
        )
        max_batch = None
        if not result.fits or options.report is not None:
            max_batch = engine.find_max_batch_size(step.spec, profile, budget)
        self._record(report.memory_record(path, profile, budget, step, result, max_batch))
        if not result.fits:
            raise CheckFailed(report.failure_text(path, profile, step, result, max_batch or 0))

    def _snapshot_path(self, options: Options, profile: GpuProfile) -> Path | None:
        """`DIR/config__x.rtx4070.pickle` for `config/x.py` under `--gpt-snapshot DIR`."""
        if options.snapshot is None:
            return None
        options.snapshot.mkdir(parents=True, exist_ok=True)
        name = "__".join(self.parent.shown_path.with_suffix("").parts).lstrip("_.")
        return options.snapshot / f"{name}.{profile.name}.pickle"

    def _step(self, options: Options, settings: Settings, profile: GpuProfile) -> TrainingRun:
        """The run train.py would start for this config (gptlint's `derive_run`), with the
        `--gpt-set` overrides and `--gpt-compile` applied."""
        shown = self.parent.shown_path
        try:
            cfg = load_config(shown, settings).with_overrides(options.overrides)
        except ConfigError as exc:
            raise CheckFailed(f"{shown}: memory check not run: {exc}") from None
        except OverrideError as exc:
            raise CheckFailed(f"--gpt-set: {exc}") from None
        run = derive_run(
            cfg,
            profile,
            world_size=LintContext(cfg, settings).world_size.size,
            root=project_root(self.path, self.config.invocation_params.dir),
            compile={"auto": None, "on": True, "off": False}[options.compile],
            strict=True,
        )
        if isinstance(run, list):
            raise CheckFailed(f"{shown}: memory check not run: {_explain(run[0])}")
        return run

    def _with_model(self, run: TrainingRun, settings: Settings, engine: ModuleType) -> TrainingRun:
        """`run` building the project's model.py (`--gpt-model`, `[tool.gptlint] model`)."""
        if not settings.model:
            return run
        try:
            factory = engine.model_factory(settings.model)
        except engine.UserModelError as exc:
            raise CheckFailed(f"{self.parent.shown_path}: memory check not run: {exc}") from None
        return dataclasses.replace(run, spec=dataclasses.replace(run.spec, model_factory=factory))

    def _record(self, record: dict[str, Any]) -> None:
        self.user_properties.append((report.MEMORY_KEY, record))


def _explain(problem: Problem) -> str:
    """A problem, with how to supply a value only running the config would give."""
    if problem.unknown:
        return f"{problem}; give its value with --gpt-set {problem.key}=VALUE"
    return str(problem)


def _device(mode: str, torch: ModuleType) -> tuple[str, int]:
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
