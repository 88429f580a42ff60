"""Everything a rule may look at for one file."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import libcst as cst

from gptlint.facts.gpus import GpuProfile
from gptlint.facts.kinds import ValueKind
from gptlint.lint.scopes import CallScope, ConfigScope, shape_scopes
from gptlint.nanogpt.configfile import ConfigFile
from gptlint.nanogpt.derive import derive_model, derive_run, meta_folder
from gptlint.nanogpt.metadata import dataset_vocab
from gptlint.nanogpt.program import manual_attention
from gptlint.nanogpt.resolve import EffectiveConfig
from gptlint.nanogpt.schema import DEFAULT_VOCAB_SIZE, Schema, gptconfig_defaults
from gptlint.runmodel.launch import WorldSize, launch_flags, launched_processes, mentions_launch
from gptlint.runmodel.trainingrun import Derived, ModelSource, TrainingRun
from gptlint.settings.table import Settings
from gptlint.text.positions import statements_matching


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
        return self.settings.profile()

    @property
    def budget(self) -> int:
        """Bytes a training step may use: the `memory-budget` setting, else the GPU's total."""
        return self.settings.budget()

    @cached_property
    def scratch_vocab(self) -> tuple[int, str]:
        """vocab_size of a scratch run (meta.pkl of the dataset, else 50304) and its origin."""
        model = self.model
        if model is not None and model.init_from == "scratch":
            return model.shape.vocab_size, model.vocab_from  # read once, by derive_model
        if "vocab_size" in self.config.schema:
            return self.config.get("vocab_size"), self.config.origin("vocab_size")
        if "dataset" not in self.config.schema:
            return DEFAULT_VOCAB_SIZE, "nanoGPT's default"
        folder, unread = meta_folder(self.config)
        dataset = self.config.get("dataset")
        return dataset_vocab(Path(self.file.path), dataset, folder=folder, unread=unread)

    @cached_property
    def shape_scopes(self) -> list[ConfigScope | CallScope]:
        vocab = self.scratch_vocab[0]
        vocab = vocab if isinstance(vocab, int) else DEFAULT_VOCAB_SIZE
        return shape_scopes(self.config, vocab, self.gptconfig_defaults)

    @property
    def gptconfig_defaults(self) -> dict[str, Any] | None:
        """`GPTConfig`'s field defaults (see `model_defaults`)."""
        return model_defaults(self.config.schema, self.settings)

    @cached_property
    def _derived_model(self) -> Derived[ModelSource]:
        return derive_model(self.config)

    @property
    def model(self) -> ModelSource | None:
        """The model train.py builds (the config's shape from scratch, a gpt2* checkpoint's
        shape, a resumed checkpoint's), or None when it cannot be told statically."""
        return self._derived_model.value

    @cached_property
    def training_run(self) -> Derived[TrainingRun]:
        """The run train.py starts on the target GPU, or the problems that stop it; its step
        computes attention as the project's model.py does (`program.manual_attention`)."""
        derived = derive_run(
            self.config, self.gpu, world_size=self.world_size.size or 1, model=self._derived_model
        )
        run = derived.value
        model_py = project_model_py(self.config.schema, self.settings)
        if run is None or model_py is None or not manual_attention(model_py):
            return derived
        return Derived(replace(run, spec=replace(run.spec, manual_attention=True)))

    @cached_property
    def world_size(self) -> WorldSize:
        """The `world-size` setting, else a `torchrun --nproc_per_node=N` (times `--nnodes=M`)
        in the file's comments or docstring, else 1."""
        if self.settings.world_size is not None:
            return WorldSize(self.settings.world_size, "the world-size setting")
        if not mentions_launch(self.file.source.text):  # skip walking the tree
            return WorldSize(1, "a single process")
        for node, text in self.comment_nodes:
            for line in text.splitlines():
                size = launched_processes(line, Path(self.file.path).name)
                if size is not None:
                    origin = f"`{launch_flags(line)}` in the file's comments"
                    return WorldSize(size, origin, node)
        return WorldSize(1, "a single process")

    @cached_property
    def comment_nodes(self) -> list[tuple[cst.Comment | cst.SimpleString, str]]:
        """Comment nodes and the module docstring's string node, with their text; empty when
        the source has neither (found without walking the tree)."""
        text = self.file.source.text
        if "#" not in text and '"""' not in text and "'''" not in text:
            return []
        found: list[tuple[cst.Comment | cst.SimpleString, str]] = []
        docstring = _docstring_node(self.file.module)
        if docstring is not None:
            found.append((docstring, str(docstring.evaluated_value)))
        if "#" in text:
            module = self.file.module
            comments = [line.comment for line in module.header if line.comment is not None]
            for statement, one_line in _commented_statements(self.file):
                comments += _statement_comments(statement, one_line)
            comments += [line.comment for line in module.footer if line.comment is not None]
            found.extend((node, node.value) for node in comments)
        return found

    def is_set_in_file(self, key: str) -> bool:
        """Whether the file gives `key` its (statically known) value."""
        resolved = self.config.resolved(key)
        return resolved is not None and resolved.kind == ValueKind.FILE


def model_defaults(schema: Schema, settings: Settings) -> dict[str, Any] | None:
    """`GPTConfig`'s field defaults from the `model` setting, else from the model file of the
    fork's train.py that `schema` was read from; None (nanoGPT's) without either."""
    model_py = project_model_py(schema, settings)
    return gptconfig_defaults(model_py) if model_py is not None else None


def project_model_py(schema: Schema, settings: Settings) -> Path | None:
    """The project's model.py: the `model` setting, else the file the fork's train.py that
    `schema` was read from imports its GPT from (`Schema.model_py`); None (nanoGPT's) without
    either."""
    return settings.model if settings.model is not None else schema.model_py


def _docstring_node(module: cst.Module) -> cst.SimpleString | None:
    if not module.body or not isinstance(module.body[0], cst.SimpleStatementLine):
        return None
    first = module.body[0].body[0] if module.body[0].body else None
    if isinstance(first, cst.Expr) and isinstance(first.value, cst.SimpleString):
        return first.value
    return None


_HASH = re.compile("#")


def _commented_statements(file: ConfigFile) -> list[tuple[cst.BaseStatement, bool]]:
    """The top-level statements that may hold a comment, in file order, each with whether its
    code is on one line: each one whose lines, or the lines above it back to the previous
    statement's first line (where the comment lines it leads with are), hold a `#` (in a
    comment, or in a string: then looked at for nothing). Every statement where the
    statements' lines are not known. Walking a tree with a visitor costs milliseconds; most
    statements of a config hold no comment, and most of the others are one line."""
    body = file.module.body
    firsts, lasts = file.statement_lines, file.statement_last_lines
    matched = statements_matching(file.source.text, firsts, len(body), _HASH)
    if matched is None or firsts is None or lasts is None or len(lasts) != len(body):
        return [(statement, False) for statement in body]
    wanted = {0} | set(matched) | {index + 1 for index in matched}
    return [
        (statement, firsts[index] == lasts[index])
        for index, statement in enumerate(body)
        if index in wanted
    ]


def _statement_comments(statement: cst.BaseStatement, one_line: bool) -> list[cst.Comment]:
    """The comments of a top-level statement, in file order. A simple statement line whose
    code is on one line can hold them only in the comment lines above it and at its end; any
    other is walked."""
    if one_line and isinstance(statement, cst.SimpleStatementLine):
        comments = [line.comment for line in statement.leading_lines if line.comment is not None]
        trailing = statement.trailing_whitespace.comment
        return comments + ([trailing] if trailing is not None else [])
    collector = _CommentCollector()
    statement.visit(collector)
    return collector.comments


class _CommentCollector(cst.CSTVisitor):
    def __init__(self) -> None:
        self.comments: list[cst.Comment] = []

    def visit_Comment(self, node: cst.Comment) -> None:
        self.comments.append(node)
