"""pytest hooks of pytest-gptcfg: `pytest --gpt-configs config/` checks nanoGPT configs, and
`pytest --gpt-configs runs/` nanochat run scripts.

This module is loaded in every pytest run of the environment, so it imports neither torch nor
the linter; they are imported once configs are asked for.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_gptcfg.options import OPTIONS_KEY, SUFFIXES, Options, add_options, read_options

if TYPE_CHECKING:
    from pytest_gptcfg.report import Results


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    options = read_options(config)
    if options is None:
        return
    from pytest_gptcfg.report import Results

    options = dataclasses.replace(options, configs=options.configs + _named_configs(config))
    config.stash[OPTIONS_KEY] = options
    config.stash[FOUND_KEY] = set()
    config.pluginmanager.register(_SessionHooks(config, options, Results()), "gptcfg-session")
    _collection_args(config, options.configs)


FOUND_KEY = pytest.StashKey[set[Path]]()
"""The `--gpt-configs` paths that named or held a config collected."""

ONLY_CONFIGS_KEY = pytest.StashKey[bool]()
"""Whether the run collects the configs alone (no path given on the command line)."""


def _named_configs(config: pytest.Config) -> tuple[Path, ...]:
    """Positional `.py` files that are not test modules, and `.sh` files (`pytest --gpt-configs
    a.py runs/speedrun.sh`): each is checked as a config or a run script too."""
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return ()
    patterns = config.getini("python_files")
    base = config.invocation_params.dir
    found = []
    for arg in config.args:
        path = (base / arg.split("::")[0]).resolve()
        test_module = path.name in ("conftest.py", "__init__.py") or any(
            fnmatch.fnmatch(path.name, pattern) for pattern in patterns
        )
        if path.suffix in SUFFIXES and path.is_file() and "::" not in arg and not test_module:
            found.append(path)
    return tuple(found)


def _collection_args(config: pytest.Config, configs: tuple[Path, ...]) -> None:
    """What pytest collects: only the configs where no path was given on the command line
    (not the `testpaths` or the folder it runs in: a project's own tests, which may not even
    import, are not what `--gpt-configs` asks for); the configs too where paths were given."""
    config.stash[ONLY_CONFIGS_KEY] = config.args_source != pytest.Config.ArgsSource.ARGS
    if config.stash[ONLY_CONFIGS_KEY]:
        config.args[:] = [str(path) for path in configs]
        return
    base = config.invocation_params.dir
    given = [(base / arg.split("::")[0]).resolve() for arg in config.args]
    for path in configs:
        if not any(path == g or g in path.parents for g in given):
            config.args.append(str(path))


@pytest.hookimpl(hookwrapper=True)
def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Generator[None, Any, None]:
    """A config becomes a GptConfigFile, never a Python test module (it is not imported); a
    nanochat run script a RunScriptFile (it is not run).

    The files under a `--gpt-configs` folder are those gptlint would lint: code such as a
    `validator.py` of functions is left to pytest's own collection where paths were given on
    the command line, and not collected where none was (`pytest --gpt-configs .` checks the
    configs, not the project's own tests); a `.sh` file that runs no nanochat step in a
    checkout is not collected.
    """
    outcome = yield
    options = parent.config.stash.get(OPTIONS_KEY, None)
    given = None if options is None else options.given(file_path)
    if given is None:
        return
    collector = _collector(parent, file_path, given)
    if collector is not None:
        parent.config.stash[FOUND_KEY].add(given)
        outcome.force_result([collector])
    elif parent.config.stash[ONLY_CONFIGS_KEY]:
        outcome.force_result([])


def _collector(parent: pytest.Collector, path: Path, given: Path | None) -> pytest.File | None:
    """The collector of a config or a nanochat run script, or None where gptlint would not lint
    `path` found in the folder `given` (None: collected whatever it holds)."""
    # items and scriptitems import the linter: loaded once configs are being collected, not
    # in every run
    if path.suffix == ".sh":
        from pytest_gptcfg.scriptitems import RunScriptFile, is_run_script_for

        if given is None or is_run_script_for(path, given):
            return RunScriptFile.from_parent(parent, path=path)
        return None
    from pytest_gptcfg.items import GptConfigFile, is_config

    if given is None or is_config(path, given):
        return GptConfigFile.from_parent(parent, path=path)
    return None


def pytest_report_header(config: pytest.Config) -> str | None:
    options = config.stash.get(OPTIONS_KEY, None)
    return None if options is None else options.header()


class _SessionHooks:
    """Per-run hooks, registered once configs are asked for: gather, summarise, report."""

    def __init__(self, config: pytest.Config, options: Options, results: Results) -> None:
        self.config, self.options, self.results = config, options, results

    @pytest.hookimpl(tryfirst=True)  # before -k and -m deselect
    def pytest_collection_modifyitems(self, session: pytest.Session, items: list) -> None:
        """pytest collects regular files only: a FIFO or device named `.py` or `.sh` in a
        configs folder becomes a config or run script here, whose lint item says what it is
        (as gptlint does)."""
        from pytest_gptcfg.items import uncollected_configs

        for folder in self.options.configs:
            if folder.is_dir():
                for path in uncollected_configs(folder):
                    collector = _collector(session, path, None)
                    assert collector is not None  # None: always collected
                    items.extend(collector.collect())

    # Both hooks see every report of the run (the user's tests, collection reports too):
    # report.py reads only the plugin's own records and ignores the rest.
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.results.add(report)

    def pytest_report_teststatus(self, report: pytest.CollectReport | pytest.TestReport) -> Any:
        from pytest_gptcfg.report import verbose_status

        word = verbose_status(report)
        return None if word is None else ("passed", ".", (word, {"green": True}))

    def pytest_terminal_summary(
        self, terminalreporter: pytest.TerminalReporter, exitstatus: int
    ) -> None:
        if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:  # say why, as gptlint does
            found = self.config.stash[FOUND_KEY]
            for path in self.options.configs:
                if path not in found:
                    terminalreporter.write_line(f"gptcfg: {_shown(path)}: no config files found")
        lines = self.results.summary()
        if lines:
            terminalreporter.write_sep("=", "gptcfg summary")
            for line in lines:
                terminalreporter.write_line(line)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.options.report is not None and not hasattr(self.config, "workerinput"):
            self.results.write_json(self.options.report)


def _shown(path: Path) -> Path:
    """A path relative to the working directory when inside it."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path
