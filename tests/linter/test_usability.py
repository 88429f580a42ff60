"""Usability through the CLI: a world-size setting wins over a launch comment, GPT401 does
not hide the memory finding, values only known at run time are asked for at once, and tables
of other model sizes are not parameter claims."""

from __future__ import annotations

from gptlint.command.cli import main

LAUNCHED_ON_8 = (
    "# torchrun --standalone --nproc_per_node=8 train.py\n"
    "gradient_accumulation_steps = 12\nbatch_size = 64\n"
)


def _lint(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def test_world_size_1_overrides_a_launch_comment(project, capsys):
    (project / "c.py").write_text(LAUNCHED_ON_8)
    _, out = _lint(capsys, "--select", "GPT401", "c.py")
    assert "GPT401" in out and "world size 8" in out
    assert _lint(capsys, "--select", "GPT401", "--world-size", "1", "c.py") == (
        0,
        "All checks passed!\n",
    )


def test_gpt401_and_the_memory_finding_are_both_reported(project, capsys):
    (project / "c.py").write_text(LAUNCHED_ON_8)
    _, out = _lint(capsys, "c.py")
    assert "c.py:2:1: GPT401" in out and "c.py:3:1: GPT501" in out


def test_every_value_only_known_at_run_time_is_asked_for_at_once(project, capsys):
    (project / "c.py").write_text(
        "import os\nbatch_size = int(os.environ['BS'])\nn_layer = int(os.environ['L'])\n"
        "n_embd = int(os.environ['E'])\n"
    )
    _, out = _lint(capsys, "c.py")
    assert out.count("GPT503") == 1
    assert "--set n_layer=VALUE --set n_embd=VALUE --set batch_size=VALUE" in out


def test_a_table_of_other_model_sizes_is_not_a_claim_and_never_rewritten(project, capsys):
    text = (
        "init_from = 'gpt2'\n"
        "# 'gpt2':         dict(n_layer=12, n_head=12, n_embd=768),  # 124M params\n"
        "#  'gpt2-medium':  dict(n_layer=24, n_head=16, n_embd=1024), # 350M params\n"
        "#  'gpt2-xl':      dict(n_layer=48, n_head=25, n_embd=1600), # 1558M params\n"
        "# gpt2-large is 774M params\n"
        "# this run: 350M params\n"
    )
    (project / "c.py").write_text(text)
    _, out = _lint(capsys, "--select", "GPT502", "c.py")
    assert out.count("GPT502") == 1 and "c.py:6:" in out  # only the line about this run
    main(["--select", "GPT502", "--fix", "--unsafe-fixes", "c.py"])
    capsys.readouterr()
    assert (project / "c.py").read_text() == text.replace("run: 350M", "run: 124M")
