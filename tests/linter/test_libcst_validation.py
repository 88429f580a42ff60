"""gptlint leaves libcst's per-node validation on: code that builds libcst nodes in another
thread while gptlint parses (another tool in the same pytest run, a codemod in a server) gets
libcst's validation as always, and so does everything after."""

from __future__ import annotations

import threading

import libcst as cst
import pytest

from gptlint.lint.fix import fix_source
from gptlint.lint.linter import lint_bytes
from gptlint.settings.table import Settings
from gptlint.text.decode import decode_source

HELPERS = "".join(f"aux_{n} = aux_{n - 1} + {n}  # {n}\n" for n in range(1, 3000))
CONFIG = f"aux_0 = 1\n{HELPERS}n_layer = 12\nn_head = 12\nn_embd = 500\n".encode()


def _invalid_node_accepted() -> bool:
    try:
        cst.Name("")  # libcst refuses an empty name
    except cst.CSTValidationError:
        return False
    return True


def test_nodes_another_thread_builds_while_gptlint_lints_and_fixes_are_validated():
    linting, stop = threading.Event(), threading.Event()
    tries_while_linting, accepted = 0, 0

    def build_nodes() -> None:
        nonlocal tries_while_linting, accepted
        while not stop.is_set():
            before = linting.is_set()
            accepted += _invalid_node_accepted()
            tries_while_linting += before and linting.is_set()

    builder = threading.Thread(target=build_nodes)
    builder.start()
    try:
        for _ in range(20):  # until the other thread has run while gptlint parsed
            linting.set()
            result = lint_bytes("c.py", CONFIG, Settings())
            outcome = fix_source(decode_source("c.py", CONFIG), Settings())
            linting.clear()
            if tries_while_linting > 100:
                break
    finally:
        stop.set()
        builder.join()
    assert [d.code for d in result.diagnostics] == ["GPT101"] and outcome.applied == 1
    assert tries_while_linting > 100
    assert accepted == 0


def test_nodes_built_after_gptlint_lints_are_validated():
    lint_bytes("c.py", CONFIG, Settings())
    with pytest.raises(cst.CSTValidationError):
        cst.Name("")
