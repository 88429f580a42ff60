"""The run model of a nanochat training invocation (`scripts.base_train`, `chat_sft`,
`base_eval`): the model nanochat's `nanochat/gpt.py` builds at a depth, and one rank's step.
Plain data, no torch; `gptlint.nanochat` fills it from a run script, the nanochat estimate
(`runmodel.chatestimate`) and the plugin read it.

Where each fact comes from in nanochat (karpathy/nanochat, `scripts/base_train.py` and
`nanochat/gpt.py`): `model_dim = ceil(depth * aspect_ratio / head_dim) * head_dim`,
`n_head = model_dim // head_dim`, `n_kv_head = n_head` (base_train builds no GQA); the
vocabulary padded up to a multiple of 64 (`GPT.__init__`); a value embedding on every layer
`i` with `i % 2 == (depth - 1) % 2` (`has_ve`: alternating, the last layer always); the window
pattern tiled over the layers, the last layer always full context, a short window being a
quarter of the context rounded up to 128 tokens (`_compute_window_sizes`: 512 at 2048; its
comment's "2048 -> 768" is not what its code computes).
"""

from __future__ import annotations

from dataclasses import dataclass

VOCAB_PADDING = 64
"""`GPT.__init__` pads the vocabulary up to a multiple of this."""

SCRIPTS = ("base_train", "chat_sft", "base_eval")
"""The nanochat entry points whose step the run model describes."""


@dataclass(frozen=True)
class ChatShape:
    """The `GPTConfig` base_train (or chat_sft, from the checkpoint) builds."""

    depth: int
    model_dim: int
    n_head: int
    n_kv_head: int
    vocab_size: int
    """As the tokenizer gives it; `padded_vocab` is what the embeddings and lm_head hold."""
    seq_len: int
    window_pattern: str

    @property
    def head_dim(self) -> int:
        return self.model_dim // self.n_head

    @property
    def padded_vocab(self) -> int:
        return -(-self.vocab_size // VOCAB_PADDING) * VOCAB_PADDING

    @property
    def value_embed_layers(self) -> tuple[int, ...]:
        """The layers with a value embedding (`has_ve`)."""
        return tuple(i for i in range(self.depth) if self.has_value_embed(i))

    def has_value_embed(self, layer: int) -> bool:
        """Whether `layer` has a value embedding (`has_ve`), without listing the layers."""
        return layer % 2 == (self.depth - 1) % 2

    @property
    def short_window(self) -> int:
        """Tokens a short (`S`) layer attends to."""
        return -(-self.seq_len // 4 // 128) * 128

    @property
    def window_sizes(self) -> tuple[int, ...]:
        """Each layer's left context in tokens (`seq_len` for a full `L` layer); the pattern
        is tiled over the layers and the last layer is always full."""
        pattern = self.window_pattern.upper()
        sizes = [
            self.seq_len if pattern[i % len(pattern)] == "L" else self.short_window
            for i in range(self.depth)
        ]
        sizes[-1] = self.seq_len
        return tuple(sizes)


@dataclass(frozen=True)
class ChatStep:
    """One rank's training (or evaluation) step of a nanochat invocation.

    `device_batch_size` sequences of `shape.seq_len` tokens per micro-step;
    `grad_accum_steps` micro-steps per optimizer step (`total_batch_size // (B * T * world)`);
    `dtype` is nanochat's COMPUTE_DTYPE (`NANOCHAT_DTYPE`, else bfloat16 on sm80+ and float32
    below); `compiled` is whether the model runs under `torch.compile` (base_train and
    chat_sft; base_eval evaluates the uncompiled model); `training` is False for base_eval.
    `notes` say where a value came from when the invocation did not give it (the same
    script's base_train run, chat_sft's fallbacks, the tokenizer's default vocabulary).
    """

    script: str
    shape: ChatShape
    device_batch_size: int
    world_size: int
    total_batch_size: int
    grad_accum_steps: int
    dtype: str
    fp8: bool
    compiled: bool
    training: bool
    notes: tuple[str, ...] = ()

    @property
    def tokens(self) -> int:
        """Tokens in one micro-batch of one rank: B x T."""
        return self.device_batch_size * self.shape.seq_len
