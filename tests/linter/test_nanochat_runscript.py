"""A nanochat run script read into the invocations of nanochat's entry points: launchers,
world sizes, continuations, variables and environment, and what only running it can tell."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptlint.nanochat.runscript import Invocation, Unknown, read_invocations

RUNS = Path(__file__).resolve().parents[1] / "data" / "nanochat" / "runs"


def only(text: str) -> Invocation:
    (invocation,) = read_invocations(text)
    return invocation


def texts(invocation: Invocation) -> list[str]:
    return [arg.text for arg in invocation.args]


def test_speedrun_like_script_lists_every_entry_point_in_order():
    invocations = read_invocations((RUNS / "speedrun.sh").read_text())
    assert [(i.script, i.line, i.launcher, i.world.size) for i in invocations] == [
        ("tok_train", 7, "python", 1),
        ("base_train", 8, "torchrun", 8),
        ("base_eval", 9, "torchrun", 8),
        ("chat_sft", 10, "torchrun", 8),
    ]
    base = invocations[1]
    assert texts(base)[:4] == [
        "--depth=24",
        "--target-param-data-ratio=8",
        "--device-batch-size=16",
        "--fp8",
    ]
    assert base.args[-1].text == "--run="
    assert base.args[-1].unknown == Unknown("$WANDB_RUN is set inside an `if` (line 5)")


def test_continuations_keep_each_flag_on_its_own_line_and_column():
    text = (RUNS / "runcpu.sh").read_text()
    base = read_invocations(text)[1]
    assert base.script == "base_train" and base.line == 6
    assert [(a.text, a.line, a.column) for a in base.args] == [
        ("--depth=6", 7, 5),
        ("--head-dim=64", 8, 5),
        ("--window-pattern=L", 9, 5),
        ("--max-seq-len=512", 10, 5),
        ("--device-batch-size=32", 11, 5),
        ("--total-batch-size=16384", 12, 5),
    ]
    assert text[base.args[0].start : base.args[0].end] == "--depth=$DEPTH"


def test_comments_and_other_commands_are_skipped():
    text = (
        "# python -m scripts.base_train --depth=4\n"
        "echo python -m scripts.base_train\n"
        "python -m nanochat.dataset -n 8 &\n"
        "python -m scripts.base_train --depth=4  # trailing --depth=5\n"
    )
    invocation = only(text)
    assert (invocation.line, texts(invocation)) == (4, ["--depth=4"])


@pytest.mark.parametrize(
    ("line", "size", "origin"),
    [
        ("torchrun --nproc_per_node=4 -m scripts.base_train", 4, "torchrun --nproc_per_node=4"),
        ("torchrun --nproc-per-node 2 -m scripts.base_train", 2, "torchrun --nproc_per_node=2"),
        (
            "torchrun --nnodes=2 --nproc_per_node=8 -m scripts.base_train",
            16,
            "torchrun --nproc_per_node=8 --nnodes=2",
        ),
        ("torchrun --standalone -m scripts.base_train", 1, "torchrun"),
        (
            "python -m torch.distributed.run --nproc_per_node=2 -m scripts.base_train",
            2,
            "torchrun --nproc_per_node=2",
        ),
        ("python3 -u -m scripts.base_train", 1, "python: one process"),
        ("uv run python scripts/base_train.py", 1, "python: one process"),
        ("torchrun --nproc_per_node=2 scripts/base_train.py", 2, "torchrun --nproc_per_node=2"),
    ],
)
def test_world_size_comes_from_the_launcher(line, size, origin):
    invocation = only(line + "\n")
    assert invocation.script == "base_train"
    assert (invocation.world.size, invocation.world.origin) == (size, origin)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            "torchrun --nproc_per_node=gpu -m scripts.base_train",
            "--nproc_per_node=gpu (line 1) depends on the machine",
        ),
        (
            "torchrun --nproc_per_node=$N -m scripts.base_train",
            "$N (line 1) is not assigned in the script",
        ),
        (
            "torchrun --nnodes=1:4 --nproc_per_node=8 -m scripts.base_train",
            "--nnodes=1:4 (line 1) depends on the machine",
        ),
    ],
)
def test_a_world_size_only_running_gives_is_unknown(line, reason):
    world = only(line + "\n").world
    assert world.size is None
    assert world.unknown == Unknown(reason)


def test_torchruns_separator_is_not_an_argument():
    invocation = only("torchrun --nproc_per_node=8 -m scripts.chat_sft -- --run=x\n")
    assert texts(invocation) == ["--run=x"]


def test_variables_assigned_earlier_are_substituted():
    text = 'B=16\nNAME="d 12"\npython -m scripts.base_train --device-batch-size=$B --run "$NAME"\n'
    assert texts(only(text)) == ["--device-batch-size=16", "--run", "d 12"]


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        (
            "python -m scripts.base_train --run=$WANDB_RUN\n",
            "$WANDB_RUN (line 1) is not assigned in the script",
        ),
        (
            "X=$(nproc)\npython -m scripts.base_train --run=$X\n",
            "a command or arithmetic substitution (line 1)",
        ),
        ('X="${Y:-8}"\npython -m scripts.base_train --run=$X\n', "`${Y:-8}` (line 1)"),
        (
            "if true; then X=4; fi\npython -m scripts.base_train --run=$X\n",
            "$X is set inside an `if` (line 1)",
        ),
        (
            "for d in 1 2; do python -m scripts.base_train --depth=$d; done\n",
            "the loop variable of `for` (line 1)",
        ),
        ("python -m scripts.base_train --run=`hostname`\n", "a command substitution (line 1)"),
        ("python -m scripts.base_train --run=$1\n", "`$1` (line 1)"),
    ],
)
def test_what_only_running_the_script_gives_is_unknown_with_its_line(script, reason):
    arg = only(script).args[-1]
    assert arg.unknown == Unknown(reason)


def test_an_unquoted_variable_that_would_split_is_unknown():
    text = 'ARGS="--depth=4 --fp8"\npython -m scripts.base_train $ARGS\n'
    assert only(text).args[0].unknown == Unknown("$ARGS (line 2) is split or globbed unquoted")


def test_environment_on_the_line_and_exported_earlier():
    text = (
        "export NANOCHAT_DTYPE=float32\n"
        "python -m scripts.base_train\n"
        "NANOCHAT_DTYPE=bfloat16 python -m scripts.base_train\n"
        "python -m scripts.base_train\n"
    )
    first, prefixed, last = read_invocations(text)
    assert first.env_value("NANOCHAT_DTYPE") == "float32"
    assert prefixed.env_value("NANOCHAT_DTYPE") == "bfloat16"
    assert last.env_value("NANOCHAT_DTYPE") == "float32"


def test_a_shell_variable_is_not_the_environment_until_exported():
    text = (
        "NANOCHAT_DTYPE=float16\n"
        "python -m scripts.base_train\n"
        "export NANOCHAT_DTYPE\n"
        "python -m scripts.base_train\n"
        "unset NANOCHAT_DTYPE\n"
        "python -m scripts.base_train\n"
    )
    assert [i.env_value("NANOCHAT_DTYPE") for i in read_invocations(text)] == [
        None,
        "float16",
        None,
    ]


def test_an_export_inside_a_block_is_unknown():
    text = (
        'if [ -n "$X" ]; then\n  export NANOCHAT_DTYPE=float16\nfi\npython -m scripts.base_train\n'
    )
    assert only(text).env_value("NANOCHAT_DTYPE") == Unknown(
        "$NANOCHAT_DTYPE is exported inside an `if` (line 2)"
    )


def test_invocations_inside_a_loop_are_read_and_marked():
    invocations = read_invocations((RUNS / "miniseries.sh").read_text())
    (base,) = invocations
    assert (base.depth, base.where) == (1, "inside a `for`")
    assert base.world.unknown == Unknown("`${NPROC_PER_NODE:-8}` (line 3)")
    assert [a.text for a in base.args] == ["--depth=", ""]
    assert base.args[1].unknown == Unknown("$DEVICE_BATCH_SIZE_ARG is set inside an `if` (line 8)")


def test_redirections_and_pipes_end_the_arguments():
    invocation = only("python -m scripts.base_eval --max-per-task=2 2>&1 | tee log > out.txt\n")
    assert texts(invocation) == ["--max-per-task=2"]


def test_quoting_is_removed_and_the_span_keeps_it():
    text = "python -m scripts.base_train --run='a b' \"--model-tag=x\"\n"
    invocation = only(text)
    assert texts(invocation) == ["--run=a b", "--model-tag=x"]
    assert [text[a.start : a.end] for a in invocation.args] == ["--run='a b'", '"--model-tag=x"']


def test_one_command_line_reads_the_same():
    invocation = only("torchrun --nproc_per_node=2 -m scripts.base_train -- --depth=12")
    assert (invocation.world.size, texts(invocation)) == (2, ["--depth=12"])


def test_other_modules_and_scripts_are_not_invocations():
    text = (
        "python -m scripts.chat_eval -- -i sft\n"
        "python -m nanochat.report generate\n"
        "torchrun --nproc_per_node=8 -m scripts.chat_rl\n"
        "python other/base_train.py\n"
    )
    assert read_invocations(text) == []


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        (
            '[ -z "$X" ] && X=dummy\npython -m scripts.base_train --run=$X\n',
            "$X is set after `&&` (line 1)",
        ),
        (
            "true || X=dummy\npython -m scripts.base_train --run=$X\n",
            "$X is set after `||` (line 1)",
        ),
        (
            "case $1 in\n  a) X=4 ;;\nesac\npython -m scripts.base_train --run=$X\n",
            "$X is set inside a `case` (line 2)",
        ),
        (
            "function setup {\n  X=4\n}\npython -m scripts.base_train --run=$X\n",
            "$X is set inside a `{ }` (line 2)",
        ),
        (
            "setup() {\n  X=4\n}\npython -m scripts.base_train --run=$X\n",
            "$X is set inside a `{ }` (line 2)",
        ),
        (
            "(X=4)\npython -m scripts.base_train --run=$X\n",
            "$X is set inside a `subshell` (line 1)",
        ),
    ],
)
def test_a_variable_set_on_a_condition_is_unknown(script, reason):
    assert only(script).args[-1].unknown == Unknown(reason)


def test_after_a_condition_the_next_line_runs_unconditionally():
    text = (
        "true && X=4\nY=8\npython -m scripts.base_train --run=$Y && python -m scripts.base_eval\n"
    )
    base, evaluation = read_invocations(text)
    assert (base.depth, base.args[0].text, evaluation.depth) == (0, "--run=8", 1)


def test_a_here_document_is_text_not_commands():
    text = (
        "cat > notes.txt <<'EOF'\n"
        "python -m scripts.base_train --depth=99\n"
        "EOF\n"
        "cat <<-END\n"
        "\tpython -m scripts.chat_sft\n"
        "\tEND\n"
        "python -m scripts.base_eval\n"
    )
    assert [(i.script, i.line) for i in read_invocations(text)] == [("base_eval", 7)]


@pytest.mark.parametrize(
    "text", ["python -m scripts.base_train 2>", "x <<", "a='b", 'a="$(b', "${"]
)
def test_text_that_ends_early_still_reads(text):
    read_invocations(text)
