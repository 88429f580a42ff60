"""pytest hooks of pytest-gptcfg: `pytest --gpt-configs config/` checks nanoGPT configs.

This module is loaded in every pytest run of the environment, so it imports neither torch nor
the linter; they are imported once configs are asked for.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_gptcfg.options import OPTIONS_KEY, Options, add_options, read_options

if TYPE_CHECKING:
    from pytest_gptcfg.report import Results


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    options = read_options(config)
    if options is None:
        return
    from pytest_gptcfg.report import Results

    config.stash[OPTIONS_KEY] = options
    config.pluginmanager.register(_SessionHooks(config, options, Results()), "gptcfg-session")
    _add_collection_args(config, options.configs)


def _add_collection_args(config: pytest.Config, configs: tuple[Path, ...]) -> None:
    """Collect the configs also when the command line or `testpaths` names other folders."""
    base = config.invocation_params.dir
    given = [(base / arg.split("::")[0]).resolve() for arg in config.args]
    for path in configs:
        if not any(path == g or g in path.parents for g in given):
            config.args.append(str(path))


@pytest.hookimpl(hookwrapper=True)
def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Generator[None, Any, None]:
    """A config becomes a GptConfigFile, never a Python test module (it is not imported).

    The files under a `--gpt-configs` folder are those gptlint would lint: code such as a
    `validator.py` of functions is left to pytest's own collection.
    """
    outcome = yield
    options = parent.config.stash.get(OPTIONS_KEY, None)
    given = None if options is None else options.given(file_path)
    if given is None:
        return
    # items imports the linter: loaded once configs are being collected, not in every run
    from pytest_gptcfg.items import GptConfigFile, is_config

    if is_config(file_path, given):
        outcome.force_result([GptConfigFile.from_parent(parent, path=file_path)])


def pytest_report_header(config: pytest.Config) -> str | None:
    options = config.stash.get(OPTIONS_KEY, None)
    return None if options is None else options.header()


class _SessionHooks:
    """Per-run hooks, registered once configs are asked for: gather, summarise, report."""

    def __init__(self, config: pytest.Config, options: Options, results: Results) -> None:
        self.config, self.options, self.results = config, options, results

    @pytest.hookimpl(tryfirst=True)  # before -k and -m deselect
    def pytest_collection_modifyitems(self, session: pytest.Session, items: list) -> None:
        """pytest collects regular files only: a FIFO or device named `.py` in a configs
        folder becomes a config here, whose lint item says what it is (as gptlint does)."""
        from pytest_gptcfg.items import GptConfigFile, uncollected_configs

        for folder in self.options.configs:
            if folder.is_dir():
                for path in uncollected_configs(folder):
                    items.extend(GptConfigFile.from_parent(session, path=path).collect())

    # Both hooks see every report of the run (the user's tests, collection reports too):
    # report.py reads only the plugin's own records and ignores the rest.
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.results.add(report)

    def pytest_report_teststatus(self, report: pytest.CollectReport | pytest.TestReport) -> Any:
        from pytest_gptcfg.report import verbose_status

        word = verbose_status(report)
        return None if word is None else ("passed", ".", (word, {"green": True}))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        lines = self.results.summary()
        if lines:
            terminalreporter.write_sep("=", "gptcfg summary")
            for line in lines:
                terminalreporter.write_line(line)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.options.report is not None and not hasattr(self.config, "workerinput"):
            self.results.write_json(self.options.report)
