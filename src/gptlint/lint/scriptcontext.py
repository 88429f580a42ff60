"""Everything a run-script rule (`rules.base.ScriptRule`) may look at for one nanochat run
script: its text, its invocations, the checkout around it, each step derived for the target
GPU, and where a flag was written."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from gptlint.facts.gpus import GpuProfile
from gptlint.nanochat.argv import Flag, ParsedArgs, parse_args
from gptlint.nanochat.checkout import Checkout
from gptlint.nanochat.derive import derive_script
from gptlint.nanochat.runscript import Invocation
from gptlint.nanochat.shellwords import line_starts, position
from gptlint.runmodel.chatestimate import ChatEstimate, estimate_chat_memory
from gptlint.runmodel.chatrun import ChatStep
from gptlint.runmodel.trainingrun import Derived
from gptlint.settings.table import Settings


@dataclass(frozen=True)
class Span:
    """Where a finding in a run script is: 1-based line and column, and where it ends."""

    line: int
    col: int
    end_line: int
    end_col: int


@dataclass
class ScriptContext:
    """One run script, read, with the checkout it runs in and the settings that apply."""

    path: str
    text: str
    invocations: list[Invocation]
    checkout: Checkout
    settings: Settings
    _estimates: dict[int, ChatEstimate] = field(default_factory=dict)

    @cached_property
    def gpu(self) -> GpuProfile:
        return self.settings.profile()

    @property
    def budget(self) -> int:
        """Bytes a step may use per GPU: the `memory-budget` setting, else the GPU's total."""
        return self.settings.budget()

    @cached_property
    def steps(self) -> list[tuple[Invocation, Derived[ChatStep]]]:
        """Each training or evaluation invocation with its step on the target GPU (the
        `world-size` setting, where given, overriding the launcher's)."""
        return derive_script(self.invocations, self.checkout, self.gpu, self.settings.world_size)

    def estimate(self, step: ChatStep) -> ChatEstimate:
        """The per-GPU estimate of `step` on the target GPU (computed once)."""
        key = id(step)
        if key not in self._estimates:
            self._estimates[key] = estimate_chat_memory(step, self.gpu)
        return self._estimates[key]

    @cached_property
    def _starts(self) -> list[int]:
        return line_starts(self.text)

    def parsed(self, invocation: Invocation) -> ParsedArgs | None:
        """The invocation's flags as its entry script reads them (None: no such script)."""
        entry = self.checkout.entry(invocation.script)
        return None if entry is None else parse_args(invocation.args, entry)

    def flag(self, invocation: Invocation, dest: str) -> Flag | None:
        """The flag that sets `dest` in `invocation` (the last written), or None."""
        parsed = self.parsed(invocation)
        return None if parsed is None else parsed.given(dest)

    def at_flag(self, invocation: Invocation, *dests: str) -> Span:
        """Where the first of `dests` given is written (the flag through its value), else
        where the invocation starts."""
        for dest in dests:
            flag = self.flag(invocation, dest)
            if flag is not None:
                end = flag.value_span[1] if flag.value_span else None
                if end is None:
                    end_line, end_col = flag.line, flag.column + len(flag.written)
                else:
                    end_line, end_col = position(self._starts, end)
                return Span(flag.line, flag.column, end_line, end_col)
        return self.at_invocation(invocation)

    def at_invocation(self, invocation: Invocation) -> Span:
        """The first word of the invocation's line (line 1 for one not written)."""
        line = max(invocation.line, 1)
        start = self._starts[line - 1] if line <= len(self._starts) else 0
        text = self.text[start:].split("\n", 1)[0]
        col = len(text) - len(text.lstrip(" \t")) + 1
        return Span(line, col, line, len(text.rstrip("\r")) + 1)
