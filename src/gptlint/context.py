"""Everything a rule may look at for one file."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from gptlint.configfile import ConfigFile
from gptlint.gpus import GpuProfile, get_profile
from gptlint.resolve import EffectiveConfig
from gptlint.scopes import CallScope, ConfigScope, shape_scopes
from gptlint.settings import Settings


@dataclass
class LintContext:
    """One config file, resolved, with the settings that apply to it."""

    config: EffectiveConfig
    settings: Settings

    @property
    def file(self) -> ConfigFile:
        return self.config.file

    @cached_property
    def gpu(self) -> GpuProfile:
        return get_profile(self.settings.gpu)

    @cached_property
    def shape_scopes(self) -> list[ConfigScope | CallScope]:
        return shape_scopes(self.config)
