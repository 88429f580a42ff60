"""What one rank of a nanochat training step keeps between steps: the parameters, their
gradients and `MuonAdamW`'s state, and what the optimizer step adds while it runs (no torch).

Every figure follows nanochat's code (karpathy/nanochat 92d63d4): `nanochat/gpt.py` builds
the tensors, `GPT.setup_optimizer` sorts them into AdamW and Muon groups, `nanochat/optim.py`
(`MuonAdamW`) keeps their state and runs the step. Where a size depends on the compute dtype it
is nanochat's `COMPUTE_DTYPE` (`ChatStep.dtype`).
"""

from __future__ import annotations

from dataclasses import dataclass

from gptlint.runmodel.chatrun import ChatShape, ChatStep

FP32 = 4
VE_GATE_CHANNELS = 12
"""`CausalSelfAttention.ve_gate_channels`: the value-embedding gate reads 12 channels."""
SMEAR_CHANNELS = 24
"""`GPT.smear_gate = Linear(24, 1)`."""
SHARD_MIN_NUMEL = 1024
"""`MuonAdamW._reduce_adamw`: on more than one rank, an AdamW parameter of at least this many
elements is reduce-scattered and keeps 1/N of its state; smaller ones are all-reduced and keep
all of it."""


def compute_width(dtype: str) -> int:
    """Bytes per element of nanochat's activations: COMPUTE_DTYPE (bf16 or fp16: 2, fp32: 4)."""
    return 4 if dtype == "float32" else 2


def embedding_width(dtype: str) -> int:
    """Bytes per element of `wte` and the value embeddings: `GPT.init_weights` casts them to
    COMPUTE_DTYPE, except under fp16 ("GradScaler cannot unscale fp16 gradients"), where they
    stay fp32 like every other parameter."""
    return 2 if dtype == "bfloat16" else 4


@dataclass(frozen=True)
class ParamGroup:
    """`count` parameters of one shape in one optimizer group, `width` bytes per element."""

    name: str
    rows: int
    cols: int
    count: int
    width: int
    muon: bool

    @property
    def numel(self) -> int:
        """Elements of one of the parameters."""
        return self.rows * self.cols


def matrix_groups(shape: ChatShape) -> tuple[ParamGroup, ...]:
    """The Muon groups: every parameter of `transformer.h`, grouped by shape as
    `setup_optimizer` does (`sorted({p.shape for p in matrix_params})`), all fp32 (nanochat's
    `Linear` keeps fp32 master weights and casts them per call). Per layer: `c_q`
    (H*hd x d), `c_k` and `c_v` (Hkv*hd x d), `c_proj` (d x d), `c_fc` (4d x d), the MLP's
    `c_proj` (d x 4d); and `ve_gate` (Hkv x 12) on the value-embedding layers."""
    d, hd = shape.model_dim, shape.head_dim
    shapes = [(shape.n_head * hd, d), (shape.n_kv_head * hd, d), (shape.n_kv_head * hd, d)]
    shapes += [(d, d), (4 * d, d), (d, 4 * d)]
    counts: dict[tuple[int, int], int] = {}
    for rows_cols in shapes:
        counts[rows_cols] = counts.get(rows_cols, 0) + shape.depth
    gates = len(shape.value_embed_layers)
    if gates:
        gate = (shape.n_kv_head, VE_GATE_CHANNELS)
        counts[gate] = counts.get(gate, 0) + gates
    return tuple(
        ParamGroup(f"muon {r}x{c}", r, c, k, FP32, True) for (r, c), k in sorted(counts.items())
    )


def adamw_groups(shape: ChatShape, dtype: str) -> tuple[ParamGroup, ...]:
    """The AdamW parameters, in `setup_optimizer`'s order: `lm_head` (padded V x d, fp32),
    `wte` and the value embeddings (padded V x Hkv*hd each, `embedding_width`), then the
    fp32 scalars: `resid_lambdas` and `x0_lambdas` (one per layer), `smear_gate` (1 x 24),
    `smear_lambda` and `backout_lambda` (one each)."""
    v, d, kv = shape.padded_vocab, shape.model_dim, shape.n_kv_head * shape.head_dim
    embed = embedding_width(dtype)
    groups = [
        ParamGroup("lm_head", v, d, 1, FP32, False),
        ParamGroup("wte", v, d, 1, embed, False),
        ParamGroup("value_embeds", v, kv, len(shape.value_embed_layers), embed, False),
        ParamGroup("lambdas", 1, shape.depth, 2, FP32, False),
        ParamGroup("smear_gate", 1, SMEAR_CHANNELS, 1, FP32, False),
        ParamGroup("scalars", 1, 1, 2, FP32, False),
    ]
    return tuple(group for group in groups if group.count)


def parameter_groups(step: ChatStep) -> tuple[ParamGroup, ...]:
    """Every parameter of the model, AdamW groups first."""
    return adamw_groups(step.shape, step.dtype) + matrix_groups(step.shape)


def parameter_counts(shape: ChatShape) -> dict[str, int]:
    """The counts `GPT.num_scaling_params` prints: wte, value_embeds, lm_head,
    transformer_matrices, scalars and their total (d20: 896.5M)."""
    by_name = {g.name: g.numel * g.count for g in adamw_groups(shape, "bfloat16")}
    counts = {
        "wte": by_name["wte"],
        "value_embeds": by_name.get("value_embeds", 0),
        "lm_head": by_name["lm_head"],
        "transformer_matrices": sum(g.numel * g.count for g in matrix_groups(shape)),
        "scalars": by_name["lambdas"] + by_name["smear_gate"] + by_name["scalars"],
    }
    counts["total"] = sum(counts.values())
    return counts


def parameter_bytes(step: ChatStep) -> int:
    """The parameters: fp32 matrices, lm_head and scalars; `wte` and the value embeddings in
    `embedding_width`."""
    return sum(g.numel * g.count * g.width for g in parameter_groups(step))


def gradient_bytes(step: ChatStep) -> int:
    """One full set of gradients, in each parameter's dtype: nanochat has no DDP, so every
    rank's backward writes every `p.grad` in full; `MuonAdamW.step` reduces them later."""
    return parameter_bytes(step)


def adamw_shard(group: ParamGroup, world: int) -> int:
    """Elements of one parameter's AdamW slice on a rank: all of it on one rank or below
    `SHARD_MIN_NUMEL`, else `shape[0] // world` rows (`_compute_adamw`'s `p_slice`)."""
    if world == 1 or group.numel < SHARD_MIN_NUMEL:
        return group.numel
    return group.rows // world * group.cols


def adamw_state_bytes(step: ChatStep) -> int:
    """`exp_avg` and `exp_avg_sq`, `torch.zeros_like(p_slice)` each: two slices per AdamW
    parameter in the parameter's own dtype (bf16 for the embeddings under bf16)."""
    world = step.world_size
    return sum(
        2 * adamw_shard(g, world) * g.count * g.width for g in adamw_groups(step.shape, step.dtype)
    )


def chunk_size(group: ParamGroup, world: int) -> int:
    """Parameters of a Muon group one rank owns: all on one rank, else ceil(K/N)."""
    return group.count if world == 1 else -(-group.count // world)


def muon_state_bytes(step: ChatStep) -> int:
    """Per Muon group (`_compute_muon`): `momentum_buffer`, chunk x rows x cols, and the
    factored `second_momentum_buffer`, chunk x rows x 1 (rows >= cols) or chunk x 1 x cols,
    both in the parameters' dtype (fp32). The chunk is padded: ceil(K/N) per rank even where
    the last rank owns fewer."""
    total = 0
    for g in matrix_groups(step.shape):
        chunk = chunk_size(g, step.world_size)
        second = g.rows if g.rows >= g.cols else g.cols
        total += chunk * (g.numel + second) * g.width
    return total


def muon_kernel_bytes(group: ParamGroup, owned: int, dtype: str) -> int:
    """What `muon_step_fused` (always `@torch.compile(fullgraph=True)`) allocates for `owned`
    stacked matrices of `group`: the Polar Express iteration runs on X in bf16 when
    COMPUTE_DTYPE is bf16 (else in fp32), and Inductor's wrapper for the kernel (read from its
    generated code, torch 2.13 on CPU, at stacks of 4 x 1024 x 256, 4 x 256 x 1024 and
    8 x 512 x 512) holds at most five stacks of X's size and one Gram matrix (owned x
    min(rows, cols)^2) at once; the norms and the cautious update are fused into reductions
    and the in-place update. The research prototype ran these kernels eagerly, which holds
    fp32 temporaries instead."""
    width = 2 if dtype == "bfloat16" else FP32
    small = min(group.rows, group.cols)
    return owned * (5 * group.numel + small * small) * width


def single_rank_step_bytes(step: ChatStep) -> int:
    """The optimizer step's own tensors at their largest on one rank (`world_size == 1`).
    Phase 1 (`_reduce_muon`) stacks every group's gradients (`grad_chunk =
    torch.stack([p.grad ...])`, fp32, kept in `reduce_infos` until the step returns); phase 2
    (`_compute_muon`) stacks each group's parameters (`stacked_owned`, kept in `gather_list`
    until phase 3 copies them back) and runs the kernel: two extra fp32 copies of all matrices
    at the end, plus the kernel's work on the group it is at. AdamW updates in place:
    Inductor's wrapper for `adamw_step_fused` allocates nothing (bf16 or fp32 parameters,
    read as `muon_kernel_bytes` was)."""
    groups = matrix_groups(step.shape)
    stacks = sum(g.numel * g.count * g.width for g in groups)
    peak, owned = stacks, stacks
    for g in groups:
        owned += g.numel * g.count * g.width
        peak = max(peak, owned + muon_kernel_bytes(g, g.count, step.dtype))
    return peak


def multi_rank_step_bytes(step: ChatStep) -> int:
    """The same on N > 1 ranks. Phase 1 launches every reduce at once: each sharded AdamW
    parameter gets a `grad_slice` (1/N of its gradient, kept); each Muon group stacks its
    gradients (`grad_stack`, K x shape, freed when `_reduce_muon` returns) into a zero-padded
    `stacked_grads` (ceil(K/N)*N x shape, kept: it is reused as the all-gather's output) and
    a `grad_chunk` (ceil(K/N) x shape, kept). Phase 2 then, per group, stacks the owned
    parameters (`stacked_owned`), runs the kernel and fills `updated_params` (ceil(K/N) x
    shape), the all-gather's input, which the pending collective holds until phase 3 waits
    on it (counted as kept; freed on return in a single-process replay)."""
    world = step.world_size
    slices = sum(
        adamw_shard(g, world) * g.count * g.width
        for g in adamw_groups(step.shape, step.dtype)
        if g.numel >= SHARD_MIN_NUMEL
    )
    kept, peak = slices, slices
    for g in matrix_groups(step.shape):
        chunk = chunk_size(g, world)
        kept += (chunk * world + chunk) * g.numel * g.width
        peak = max(peak, kept + g.count * g.numel * g.width)
    for g in matrix_groups(step.shape):
        chunk = chunk_size(g, world)
        stacked = chunk * g.numel * g.width  # stacked_owned; updated_params is as large
        peak = max(peak, kept + stacked + max(muon_kernel_bytes(g, chunk, step.dtype), stacked))
        kept += stacked  # updated_params, held by the all-gather
    return peak


def optimizer_step_bytes(step: ChatStep) -> int:
    """What `MuonAdamW.step` allocates beyond the state at its largest (world 1 vs N)."""
    if step.world_size == 1:
        return single_rank_step_bytes(step)
    return multi_rank_step_bytes(step)
