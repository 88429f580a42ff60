"""A nanochat checkout read statically: where it is, its entry scripts' argparse options and
defaults (a fork's count), GPTConfig's defaults, chat_sft's fallbacks; what cannot be read is
said with its file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gptlint.nanochat.checkout import Checkout, find_checkout
from gptlint.nanochat.runscript import Unknown

DATA = Path(__file__).resolve().parents[1] / "data" / "nanochat"


@pytest.fixture
def checkout(tmp_path: Path) -> Checkout:
    shutil.copytree(DATA, tmp_path / "nanochat-fork")
    return Checkout(tmp_path / "nanochat-fork")


def test_a_run_script_finds_the_checkout_above_it(checkout):
    assert find_checkout(checkout.root / "runs" / "speedrun.sh") == Checkout(checkout.root)


def test_a_folder_without_both_markers_is_no_checkout(checkout, tmp_path):
    (checkout.root / "nanochat" / "gpt.py").unlink()
    assert find_checkout(checkout.root / "runs" / "speedrun.sh") is None
    assert find_checkout(tmp_path / "elsewhere.sh") is None


def test_entry_options_name_type_default_action_and_choices(checkout):
    entry = checkout.entry("base_train")
    assert entry is not None and entry.problems == ()
    depth = entry.option("depth")
    assert depth is not None
    assert (depth.flags, depth.type, depth.default, depth.line) == (("--depth",), int, 20, 11)
    fp8 = entry.option("fp8")
    assert fp8 is not None and (fp8.action, fp8.default, fp8.takes_value) == (
        "store_true",
        False,
        False,
    )
    assert entry.option("eval_tokens").default == 80 * 524288
    assert entry.option("target_param_data_ratio").default == 12
    assert entry.option("model_tag").default is None


def test_choices_not_written_as_a_literal_are_unknown_with_their_line(checkout):
    recipe = checkout.entry("base_train").option("fp8_recipe")
    assert recipe.choices == Unknown(
        "base_train.py:10: the choices of --fp8-recipe are not a literal"
    )


def test_options_inside_a_function_are_read(checkout):
    entry = checkout.entry("base_eval")
    assert [o.dest for o in entry.options] == ["device_batch_size", "split_tokens", "max_per_task"]
    assert entry.option("split_tokens").default == 40 * 524288


def test_a_forks_changed_default_counts(checkout):
    path = checkout.root / "scripts" / "tok_train.py"
    path.write_text(path.read_text().replace("default=2**15", "default=2**16 + 64 * 4"))
    assert checkout.entry("tok_train").option("vocab_size").default == 65792


@pytest.mark.parametrize(
    ("default", "expected"),
    [
        (
            "int(os.environ['X'])",
            Unknown("base_train.py:11: the default of --depth is not a literal"),
        ),
        ("'24'", 24),
        ("'deep'", Unknown("base_train.py:11: the default 'deep' is not a valid int")),
        ("2 ** 100000", Unknown("base_train.py:11: the default of --depth is not a literal")),
        ("1 // 0", Unknown("base_train.py:11: the default of --depth is not a literal")),
    ],
)
def test_a_default_that_is_not_simple_arithmetic_is_unknown(checkout, default, expected):
    path = checkout.root / "scripts" / "base_train.py"
    path.write_text(path.read_text().replace("default=20,", f"default={default},"))
    assert checkout.entry("base_train").option("depth").default == expected


def test_a_type_other_than_int_float_str_is_unknown(checkout):
    path = checkout.root / "scripts" / "base_train.py"
    path.write_text(path.read_text().replace('"--depth", type=int', '"--depth", type=parse_depth'))
    assert checkout.entry("base_train").option("depth").type == Unknown(
        "base_train.py:11: type=parse_depth converts the value in a way not read"
    )


def test_an_unparsable_script_is_said_not_guessed(checkout):
    (checkout.root / "scripts" / "base_train.py").write_text("parser.add_argument(\n")
    entry = checkout.entry("base_train")
    assert entry.options == ()
    assert entry.problems == (f"{entry.path}: cannot be read (SyntaxError)",)


def test_a_missing_entry_script_reads_as_none(checkout):
    (checkout.root / "scripts" / "chat_sft.py").unlink()
    assert checkout.entry("chat_sft") is None


def test_gptconfig_defaults(checkout):
    assert checkout.gptconfig() == {
        "sequence_len": 2048,
        "vocab_size": 32768,
        "n_layer": 12,
        "n_head": 6,
        "n_kv_head": 6,
        "n_embd": 768,
        "window_pattern": "SSSL",
    }


def test_chat_sft_fallbacks(checkout):
    assert checkout.sft_fallbacks() == {
        "max_seq_len": 2048,
        "device_batch_size": 32,
        "total_batch_size": 524288,
    }
    path = checkout.root / "scripts" / "chat_sft.py"
    path.write_text(
        path.read_text().replace('("device_batch_size", 32,', '("device_batch_size", B,')
    )
    assert checkout.sft_fallbacks()["device_batch_size"] == Unknown(
        "chat_sft.py:16: the fallback of device_batch_size"
    )
