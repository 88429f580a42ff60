"""Test items for one nanochat run script (`runs/speedrun.sh`): `::lint` (gptlint's run-script
rules, GPT6xx) and `::memory[<gpu>-line<N>]` for each invocation of nanochat's entry points
that runs the model: base_train's and chat_sft's training step, base_eval's evaluation.

Pytest glue, no torch: the engine (`pytest_gptcfg.engine.chatcheck`) is imported inside
`ScriptMemoryItem.runtest` only, once the invocation's step is known.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gptlint.facts.gpus import DEFAULT_GPU, GpuProfile
from gptlint.facts.kinds import MemoryMode
from gptlint.facts.units import format_gib
from gptlint.lint.discover import DEFAULT_EXCLUDE, excluded
from gptlint.lint.rules import RULE_CODES
from gptlint.lint.rules.nanochat import problem_flags, problem_message
from gptlint.lint.scriptcontext import ScriptContext
from gptlint.lint.scriptlint import lint_script
from gptlint.nanochat.checkout import MARKERS, Checkout, find_checkout
from gptlint.nanochat.runscript import Invocation, given_variables, read_invocations
from gptlint.runmodel.chatestimate import estimate_chat_memory
from gptlint.runmodel.chatrun import SCRIPTS, ChatStep
from gptlint.settings.pyproject import load_settings
from gptlint.settings.table import Settings, SettingsError
from gptlint.text.decode import unread_reason
from gptlint.text.files import read_regular
from pytest_gptcfg import modelfailure, report
from pytest_gptcfg.chatreport import chat_failure_text, chat_record
from pytest_gptcfg.items import (
    MAX_SIMULATED_BYTES,
    MAX_SIMULATED_LAYERS,
    CheckFailed,
    ConfigItem,
    GptConfigFile,
    check_beside,
    checked,
    judge_lint,
    resolve_device,
    snapshot_path,
)
from pytest_gptcfg.results import MemoryResult


def is_run_script_for(path: Path, given: Path) -> bool:
    """Whether the `.sh` file `path`, named by `--gpt-configs` or found in the folder `given`
    it names, is collected: gptlint's own choice. A named one unless excluded; one found in a
    folder if `gptlint.lint.discover.walk` finds it and it runs nanochat inside a checkout
    (`lint_script(scripts_only=True)` does not skip it; an unreadable one counts, for gptlint
    reports it). With unreadable settings it is collected, and its items report why."""
    path = path.resolve()
    try:
        settings = load_settings(path.parent, RULE_CODES)
    except SettingsError:
        return True
    if excluded(path, settings.exclude, settings.root):
        return False
    if path == given:
        return True
    if any(part in DEFAULT_EXCLUDE for part in path.relative_to(given).parts[:-1]):
        return False
    try:
        raw = read_regular(path)
    except OSError:
        return True
    return not lint_script(str(path), raw, settings, scripts_only=True).skipped


class RunScriptFile(GptConfigFile):
    """A nanochat run script, collected without running it; its settings are a config's
    (`GptConfigFile.settings`: `[tool.gptlint]` under the plugin's GPU, budget, world size
    and CUDA context)."""

    def plugin_overrides(self) -> tuple[str, ...]:
        """`--gpt-set NAME=VALUE`: the values of shell variables the script leaves unknown
        (after `[tool.gptlint] set`'s), for the lint item and the memory items alike;
        `--gpt-compile` does not apply (base_train and chat_sft always compile)."""
        return self.options.overrides

    def invocations(self, settings: Settings) -> list[Invocation]:
        """The script's invocations, with the variables `settings` give; CheckFailed where
        the script cannot be read or a `NAME=VALUE` is not one."""
        try:
            given = given_variables(settings.overrides)
        except ValueError as exc:
            raise CheckFailed(f"{self.shown_path}: {exc}") from None
        return read_invocations(self.text(), given)

    def collect(self) -> Iterator[pytest.Item]:
        yield ScriptLintItem.from_parent(self, name="lint")
        try:
            settings = self.settings()
        except CheckFailed:  # the items say why
            settings = Settings(gpu=self.options.gpu or DEFAULT_GPU)
        gpu = settings.gpu
        try:
            invocations = self.invocations(settings)
        except CheckFailed:  # the lint item says why
            return
        on_line: dict[int, int] = {}
        for index, invocation in enumerate(invocations):
            if invocation.script in SCRIPTS:
                line = invocation.line
                on_line[line] = on_line.get(line, 0) + 1
                # a second invocation on one line (`a && b`): `memory[rtx4090-line8-2]`
                nth = f"-{on_line[line]}" if on_line[line] > 1 else ""
                name = f"memory[{gpu}-line{line}{nth}]"
                yield ScriptMemoryItem.from_parent(
                    self, name=name, invocation=invocation, index=index
                )

    def text(self) -> str:
        """The script's text; CheckFailed where it cannot be read as UTF-8."""
        try:
            return read_regular(self.path).decode("utf-8")
        except OSError as exc:
            message = unread_reason(exc)
        except UnicodeDecodeError as exc:
            message = f"cannot read the run script: {exc}"
        raise CheckFailed(f"{self.shown_path}: {message}")


class ScriptLintItem(ConfigItem):
    """Fails on error-level GPT6xx findings; warnings and infos go to the session summary."""

    parent: RunScriptFile

    def runtest(self) -> None:
        shown = self.parent.shown_path
        settings = self.parent.settings()
        try:
            raw = read_regular(self.path)
        except OSError as exc:
            raise CheckFailed(f"{shown}: {unread_reason(exc)}") from None
        result = lint_script(str(shown), raw, settings, anchor=self.path)
        if result.error is not None:
            raise CheckFailed(result.error)
        judge_lint(self, shown, result.diagnostics)


class ScriptMemoryItem(ConfigItem):
    """Runs (simulates) one invocation's step against the budget, per GPU: base_train's or
    chat_sft's training step, base_eval's evaluation. The step is the one gptlint derives for
    the target GPU (`ScriptContext.steps`, `--gpt-world-size` overriding the launcher's); the
    verdict `chatcheck.check_chat_memory`'s."""

    parent: RunScriptFile

    def __init__(self, *, invocation: Invocation, index: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.index, self.line, self.script = index, invocation.line, invocation.script

    def runtest(self) -> None:
        shown = str(self.parent.shown_path)
        settings = self.parent.settings()
        profile, budget = settings.profile(), settings.budget()
        try:
            step, checkout = self._step(settings, profile)
            # The torch boundary: the engine imports torch, so it is imported here, once the
            # step is known, never when the plugin loads or collects run scripts.
            from pytest_gptcfg.engine import chatcheck
            from pytest_gptcfg.engine import check as engine

            mode, device = resolve_device(self.parent.options.mode, engine.import_torch())
        except CheckFailed as exc:
            self._record(profile, budget, error=str(exc))
            raise
        check_beside(self)  # nanochat runs are simulated whatever the mode
        try:
            result, max_batch = checked(
                self,
                lambda: self._check(chatcheck, step, checkout, profile, budget, mode, device),
            )
        except chatcheck.ChatModelError as exc:
            message = f"{shown}:{self.line}: memory check not run: {exc}"
            self._record(profile, budget, error=message)
            raise CheckFailed(message) from None
        except Exception as exc:  # never a traceback in the user's test run
            what = modelfailure.what_raised(exc)
            message = (
                f"{shown}:{self.line}: memory check failed inside pytest-gptcfg ({what}); "
                "please report it with the run script"
            )
            self._record(profile, budget, error=message)
            raise CheckFailed(message) from None
        self._record(profile, budget, step, result, max_batch)
        if not result.fits:
            failure = chat_failure_text(shown, self.line, profile, step, result, max_batch or 0)
            raise CheckFailed(failure)

    def ahead(self) -> Callable[[], object] | None:
        """This invocation's check (the compiled plan it needs included), as work for the fork
        beside the run (`check_beside`); None where it writes a memory snapshot."""
        from pytest_gptcfg.engine import chatcheck
        from pytest_gptcfg.engine import check as engine

        if self.parent.options.snapshot is not None:
            return None
        settings = self.parent.settings()
        profile, budget = settings.profile(), settings.budget()
        step, checkout = self._step(settings, profile)
        mode, device = resolve_device(self.parent.options.mode, engine.import_torch())
        return lambda: self._check(chatcheck, step, checkout, profile, budget, mode, device)

    def _check(
        self,
        chatcheck: ModuleType,
        step: ChatStep,
        checkout: Checkout,
        profile: GpuProfile,
        budget: int,
        mode: str,
        device: int,
    ) -> tuple[MemoryResult, int | None]:
        """The verdict on `step`, and the largest `--device-batch-size` that fits where the
        verdict or the report needs it (`chatcheck` is `pytest_gptcfg.engine.chatcheck`,
        imported by the caller at the torch boundary)."""
        snapshot = snapshot_path(
            self.parent.options, self.parent.shown_path, f"line{self.line}", profile.name
        )
        result = chatcheck.check_chat_memory(
            step, checkout.root, profile, budget, mode, device, snapshot
        )
        max_batch = None
        if not result.fits or self.parent.options.report is not None:
            # the check is the search's first probe, unless it was measured
            known = result if result.mode != MemoryMode.MEASURED else None
            max_batch = chatcheck.find_max_device_batch(
                step, checkout.root, profile, budget, known=known
            )
        return result, max_batch

    def _step(self, settings: Settings, profile: GpuProfile) -> tuple[ChatStep, Checkout]:
        """The step gptlint derives for this invocation on the target GPU, and the checkout
        it runs in; CheckFailed saying what stops it or which value only running the script
        gives, and where (as GPT601 and GPT602 say it), or that it is too large to simulate."""
        shown = self.parent.shown_path
        text = self.parent.text()
        invocations = self.parent.invocations(settings)
        if self.index >= len(invocations) or invocations[self.index].line != self.line:
            raise CheckFailed(f"{shown}: the run script changed since it was collected")
        checkout = find_checkout(self.path)
        if checkout is None:
            raise CheckFailed(f"{shown}:{self.line}: memory check not run: {no_checkout(shown)}")
        ctx = ScriptContext(str(shown), text, invocations, checkout, settings)
        invocation = invocations[self.index]
        derived = next(d for i, d in ctx.steps if i is invocation)
        if derived.value is None:
            lines = []
            for problem in derived.problems:
                at = ctx.at_flag(invocation, *problem_flags(problem))
                message = problem_message(invocation, problem, "--gpt-world-size")
                lines.append(f"{shown}:{at.line}:{at.col}: memory check not run: {message}")
            raise CheckFailed("\n".join(lines))
        too_large = _too_large(derived.value, profile)
        if too_large:
            raise CheckFailed(
                f"{shown}:{self.line}: memory check not run: too large to simulate: {too_large}"
            )
        return derived.value, checkout

    def _record(
        self,
        profile: GpuProfile,
        budget: int,
        step: ChatStep | None = None,
        result: MemoryResult | None = None,
        max_batch: int | None = None,
        error: str | None = None,
    ) -> None:
        shown = str(self.parent.shown_path)
        record = chat_record(
            shown, self.line, self.script, profile, budget, step, result, max_batch, error
        )
        self.user_properties.append((report.MEMORY_KEY, record))


def no_checkout(shown: Path) -> str:
    """Why a run script's invocations cannot be derived outside a checkout."""
    return (
        f"no nanochat checkout (a folder with {' and '.join(MARKERS)}) is at or above {shown}: "
        "its flags' defaults cannot be read"
    )


def _too_large(step: ChatStep, profile: GpuProfile) -> str | None:
    """Why the step is too large to simulate, or None: more layers than
    `MAX_SIMULATED_LAYERS`, or tensors at the peak (gptlint's estimate) beyond
    `MAX_SIMULATED_BYTES`; decided before any torch work."""
    if step.shape.depth > MAX_SIMULATED_LAYERS:
        return f"depth {step.shape.depth} is more than {MAX_SIMULATED_LAYERS} layers"
    tensors = estimate_chat_memory(step, profile).tensors
    if tensors > MAX_SIMULATED_BYTES:
        return (
            f"needs ~{format_gib(tensors)} for its tensors at the peak (the largest GPU "
            f"profile holds {MAX_SIMULATED_BYTES // 64 / 1024**3:.0f} GiB)"
        )
    return None
