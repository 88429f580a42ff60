"""An invocation's arguments read as its entry script's argparse reads them: both value
forms, unique prefixes, switches, types and choices, the last flag winning; argparse's errors
at the flag's line and column; each value's exact span, so a fix can rewrite it byte-exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptlint.nanochat.argv import ArgError, ParsedArgs, parse_args
from gptlint.nanochat.checkout import Checkout
from gptlint.nanochat.runscript import Unknown, read_invocations

CHECKOUT = Checkout(Path(__file__).resolve().parents[1] / "data" / "nanochat")


def parsed(text: str) -> ParsedArgs:
    (invocation,) = read_invocations(text)
    entry = CHECKOUT.entry(invocation.script)
    assert entry is not None
    return parse_args(invocation.args, entry)


def values(result: ParsedArgs) -> dict[str, object]:
    return {flag.option.dest: flag.value for flag in result.flags}


def test_both_value_forms_and_a_switch():
    result = parsed("python -m scripts.base_train --depth=12 --max-seq-len 1024 --fp8\n")
    assert values(result) == {"depth": 12, "max_seq_len": 1024, "fp8": True}
    assert result.errors == () and result.opaque == ()


def test_a_value_span_is_exact_in_the_script_text():
    text = (
        "torchrun --nproc_per_node=8 -m scripts.base_train -- \\\n"
        "    --device-batch-size=16 \\\n"
        "    --max-seq-len '1024'\n"
    )
    result = parsed(text)
    batch, seq = result.flags
    assert (batch.line, batch.column, seq.line, seq.column) == (2, 5, 3, 5)
    assert text[slice(*batch.value_span)] == "16"
    assert text[slice(*seq.value_span)] == "'1024'"
    start, end = batch.value_span
    fixed = text[:start] + "8" + text[end:]
    assert fixed == text.replace("--device-batch-size=16", "--device-batch-size=8")


def test_a_unique_prefix_resolves_to_its_option():
    result = parsed("python -m scripts.base_train --dep=8 --total 65536 --window=L\n")
    assert values(result) == {"depth": 8, "total_batch_size": 65536, "window_pattern": "L"}
    assert [f.written for f in result.flags] == ["--dep", "--total", "--window"]


def test_an_exact_flag_wins_over_the_longer_ones_it_prefixes():
    assert values(parsed("python -m scripts.base_train --fp8\n")) == {"fp8": True}


@pytest.mark.parametrize(
    ("args", "message", "column"),
    [
        (
            "--de=8",
            "ambiguous option: --de could match --device-type, --depth, --device-batch-size",
            30,
        ),
        ("--fp 1", "ambiguous option: --fp could match --fp8, --fp8-recipe", 30),
        ("--detph=8", "unrecognized arguments: --detph", 30),
        ("--fp8=1", "argument --fp8: ignored explicit argument '1'", 30),
        ("--depth", "argument --depth: expected one argument", 30),
        ("--depth --fp8", "argument --depth: expected one argument", 30),
        ("--depth=twelve", "argument --depth: invalid int value: 'twelve'", 30),
        (
            "--target-param-data-ratio=x",
            "argument --target-param-data-ratio: invalid float value: 'x'",
            30,
        ),
        ("--fp8 extra", "unrecognized arguments: extra", 36),
        ("-d 4", "unrecognized arguments: -d", 30),
    ],
)
def test_what_argparse_exits_on_is_an_error_at_the_flag(args, message, column):
    result = parsed(f"python -m scripts.base_train {args}\n")
    assert result.errors[0] == ArgError(message, 1, column)


def test_an_invalid_choice_is_an_error():
    (invocation,) = read_invocations("python -m scripts.base_train --fp8-recipe=fast\n")
    entry = CHECKOUT.entry("base_train")
    recipe = entry.option("fp8_recipe")
    literal = type(recipe)(**{**recipe.__dict__, "choices": ("rowwise", "tensorwise")})
    chosen = type(entry)(entry.name, entry.path, (literal,))
    assert parse_args(invocation.args, chosen).errors == (
        ArgError(
            "argument --fp8-recipe: invalid choice: 'fast' (choose from rowwise, tensorwise)", 1, 30
        ),
    )


def test_choices_not_read_leave_the_value_unknown():
    (flag,) = parsed("python -m scripts.base_train --fp8-recipe=rowwise\n").flags
    assert flag.value is None
    assert flag.unknown == Unknown(
        "base_train.py:10: the choices of --fp8-recipe are not a literal"
    )


def test_a_negative_number_is_a_value_not_a_flag():
    assert values(parsed("python -m scripts.base_train --total-batch-size -1\n")) == {
        "total_batch_size": -1
    }


def test_the_last_flag_wins():
    result = parsed("python -m scripts.base_train --depth=4 --depth=8\n")
    assert result.given("depth").value == 8


def test_an_unknown_value_keeps_its_flag_and_span():
    text = "python -m scripts.base_train --depth=$D\n"
    (flag,) = parsed(text).flags
    assert (flag.option.dest, flag.value) == ("depth", None)
    assert flag.unknown == Unknown("$D (line 1) is not assigned in the script")
    assert text[slice(*flag.value_span)] == "$D"


def test_a_word_only_running_gives_may_set_any_flag():
    result = parsed("python -m scripts.base_train $EXTRA\n")
    assert result.opaque == (
        Unknown(
            "$EXTRA (line 1) is not assigned in the script: a word that may set any flag (line 1)"
        ),
    )


def test_after_a_double_dash_every_word_is_positional():
    result = parsed("python -m scripts.base_train -- --depth=4\n")
    assert result.errors == (ArgError("unrecognized arguments: --depth=4", 1, 33),)
