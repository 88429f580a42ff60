"""No rule may crash or hang on any value a config can hold, and fixes must converge."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gptlint.lint.fix import fix_source
from gptlint.lint.linter import lint_source
from gptlint.lint.rules import ALL_RULES
from gptlint.nanogpt.schema import KV_HEAD_KEYS, NANOGPT_DEFAULTS
from gptlint.settings.table import Settings
from gptlint.text.decode import decode_source

KEYS = sorted({*NANOGPT_DEFAULTS, "vocab_size", *KV_HEAD_KEYS, "n_embed", "lr"})
VALUES = st.one_of(
    st.integers(-3, 5000).map(str),
    st.sampled_from(
        ["0", "-1", "10 ** 30", "10 ** 400", "2 ** 62", "1e308", "float('inf')", "float('nan')",
         "0.0", "1.0", "5e3", "True", "False", "'bf16'", "'gpt2-xl'", "'resume'", "'Scratch'", "''",
         "'float16'", "None", "[1, 2]", "os.environ['X']"]
    ),
)  # fmt: skip
LINES = st.lists(st.tuples(st.sampled_from(KEYS), VALUES), min_size=1, max_size=8)
EVERY_RULE = Settings(select=("ALL",))


def _source(lines, comment):
    text = "import os\n" + "".join(f"{k} = {v}  # {comment}\n" for k, v in lines)
    return decode_source("config/c.py", text.encode())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    LINES,
    st.sampled_from(["", "~125M parameters", "1.5B", "torchrun --nproc_per_node=3", "(124M)"]),
)
def test_every_rule_survives_any_value_and_fixes_converge(lines, comment):
    source = _source(lines, comment)
    started = time.monotonic()
    result = lint_source(source, EVERY_RULE)
    assert time.monotonic() - started < 5
    assert {d.code for d in result.diagnostics} <= {rule.code for rule in ALL_RULES}
    outcome = fix_source(source, EVERY_RULE, unsafe=True)
    again = fix_source(decode_source("config/c.py", outcome.fixed), EVERY_RULE, unsafe=True)
    assert again.fixed == outcome.fixed


EXTREMES = [
    "10 ** 30", "10 ** 400", "2 ** 62", "-(10 ** 30)", "1e308", "-1e308", "float('inf')",
    "-float('inf')", "float('nan')", "-0.5",
]  # fmt: skip


@pytest.mark.parametrize("value", EXTREMES)
def test_extreme_values_of_every_key_finish_quickly(value):
    for key in KEYS:
        source = decode_source("config/c.py", f"{key} = {value}\nn_head = 7\n".encode())
        started = time.monotonic()
        lint_source(source, EVERY_RULE)
        fix_source(source, EVERY_RULE, unsafe=True)
        assert time.monotonic() - started < 2, key
