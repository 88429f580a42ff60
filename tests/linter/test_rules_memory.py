"""GPT501 against GPU profiles, budgets and datasets; GPT502's reading of claims."""

from __future__ import annotations

import pickle

import pytest

from gptlint.command.cli import main
from gptlint.lint.fix import fix_source
from gptlint.lint.linter import lint_file
from gptlint.lint.rules.memory import claims
from gptlint.settings.table import Settings
from gptlint.text.decode import read_source

SEED = (
    "n_layer = 12\nn_head = 12\nn_embd = 576\ndropout = 0.0\nbatch_size = 16\n"
    "block_size = 1024\ngradient_accumulation_steps = 32\ncompile = False\n"
)
CHAR = (
    "dataset = 'shakespeare_char'\nn_layer = 6\nn_head = 6\nn_embd = 384\n"
    "batch_size = 64\nblock_size = 256\ncompile = False\n"
)


def _write(tmp_path, text, name="c.py"):
    path = tmp_path / "config" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def _gpt501(path, **settings):
    return lint_file(path, Settings(select=("GPT501",), **settings))


def test_seed_config_does_not_fit_a_12_gb_card_and_says_what_does(tmp_path):
    (found,) = _gpt501(_write(tmp_path, SEED))
    assert found.line == 5 and found.severity == "error"
    assert "estimated peak training memory 17.01 GiB exceeds the 11.99 GiB budget" in found.message
    assert "logits and loss 9.21" in found.message
    assert "the largest batch_size that fits is 10" in found.message
    assert "batch_size=8 with gradient_accumulation_steps=64 keeps 524,288 tokens" in found.message


def test_seed_config_fits_a_24_gb_card_or_a_larger_budget(tmp_path):
    path = _write(tmp_path, SEED)
    assert _gpt501(path, gpu="rtx4090") == []
    assert _gpt501(path, memory_budget=18 * 1024**3) == []
    assert _gpt501(path, gpu="rtx4090", memory_budget=16 * 1024**3) != []


def test_unsafe_fix_rewrites_batch_and_accumulation_only(tmp_path):
    path = _write(tmp_path, "# my run\n" + SEED.replace("batch_size = 16", "batch_size = 16  # b"))
    source = read_source(str(path))
    outcome = fix_source(source, Settings(select=("GPT501",)), unsafe=True)
    assert outcome.fixed.decode() == "# my run\n" + SEED.replace(
        "batch_size = 16", "batch_size = 8  # b"
    ).replace("= 32", "= 64")
    assert fix_source(source, Settings(select=("GPT501",))).fixed == source.raw


def test_accumulation_keeps_divisibility_by_the_world_size(tmp_path):
    (found,) = _gpt501(_write(tmp_path, SEED.replace("= 32", "= 8")), world_size=8)
    assert (
        "batch_size=8 with gradient_accumulation_steps=16 (a multiple of the 8 processes of the"
        " world-size setting) keeps 131,072 tokens"
    ) in found.message


def test_the_memory_of_one_ddp_process_says_what_it_leaves_out(tmp_path):
    path = _write(tmp_path, SEED.replace("= 32", "= 8"))
    (found,) = _gpt501(path, world_size=8)
    assert (
        "; this is the memory of one of 8 processes, without DDP's gradient buckets (another"
        " copy of the gradients: "
    ) in found.message
    (alone,) = _gpt501(path)
    assert "DDP" not in alone.message


def test_char_dataset_vocab_comes_from_nanogpts_prepare_script(tmp_path):
    assert _gpt501(_write(tmp_path, CHAR)) == []
    found = _gpt501(_write(tmp_path, CHAR.replace("shakespeare_char", "openwebtext")))
    assert found and "logits and loss" in found[0].message


def test_meta_pkl_beside_the_config_folder_sets_the_vocab(tmp_path):
    meta = tmp_path / "data" / "mychars" / "meta.pkl"
    meta.parent.mkdir(parents=True)
    meta.write_bytes(pickle.dumps({"vocab_size": 96, "itos": {0: "a"}, "stoi": {"a": 0}}))
    assert _gpt501(_write(tmp_path, CHAR.replace("shakespeare_char", "mychars"))) == []


def test_meta_pkl_with_objects_is_not_unpickled(tmp_path):
    meta = tmp_path / "data" / "evil" / "meta.pkl"
    meta.parent.mkdir(parents=True)
    meta.write_bytes(pickle.dumps({"vocab_size": 96, "x": pytest.approx}))
    (found,) = _gpt501(_write(tmp_path, CHAR.replace("shakespeare_char", "evil")))
    assert "vocab_size 50304 (data/evil/meta.pkl unusable (not read: refused" in found.message


def test_pretrained_and_resumed_runs(tmp_path):
    xl = _write(tmp_path, "init_from = 'gpt2-xl'\nbatch_size = 1\n")
    assert "even batch_size=1 needs more" in _gpt501(xl)[0].message
    assert _gpt501(xl, gpu="a100-40gb") == []
    resumed = _write(tmp_path, "init_from = 'resume'\nbatch_size = 64\n", "r.py")
    assert _gpt501(resumed) == []


def test_math_attention_on_a_t4_is_named(tmp_path):
    text = "n_layer = 12\nn_head = 12\nn_embd = 504\nbatch_size = 12\ndtype = 'float16'\n"
    (found,) = _gpt501(_write(tmp_path, text), gpu="t4")
    assert "math attention" in found.message


@pytest.mark.parametrize(
    ("comment", "claimed"),
    [
        ("# ~125M parameters", ["125M"]),
        ("# GPT-2 (124M) on 8 A100s", ["124M"]),
        ("# a 1.5B param model, 0.5M tokens per batch", ["1.5B"]),
        ("# total batch ~0.5M tokens", []),
        ("# 12 GB card, 500MB free", []),
        ("# about 350M parameters, 50M tokens", ["350M"]),
    ],
)
def test_claims_are_read_only_where_they_are_about_parameters(comment, claimed):
    assert [m.group("number") + m.group("unit") for m in claims(comment)] == claimed


def test_a_claim_about_an_absurdly_deep_model_is_restated_in_whole_billions(tmp_path, capsys):
    path = _write(tmp_path, "# ~100M params\nn_layer = 10**9\n")
    main(["--diff", "--unsafe-fixes", "--select", "GPT502", str(path)])
    assert "+# ~7079424B params\n" in capsys.readouterr().out  # not 7079424.0B


def test_claim_in_the_docstring_of_a_fine_tune(tmp_path):
    path = _write(tmp_path, '"""Fine-tune GPT-2 XL (774M parameters)."""\ninit_from = "gpt2-xl"\n')
    found = lint_file(path, Settings(select=("GPT502",)))
    assert len(found) == 1 and "gpt2-xl's model has 1.56B" in found[0].message
