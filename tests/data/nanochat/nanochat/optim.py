"""Test data: a nanochat-like optim.py. `MuonAdamW` takes param groups of kind 'adamw'
(embeddings, lm_head, scalars) and 'muon' (the block matrices, one group per shape). Without a
process group every parameter is this rank's; with one, gradients are reduced here (no DDP):
AdamW parameters of 1024+ elements are reduce-scattered and keep a 1/world slice of state,
each Muon group stacks its gradients, pads them to a multiple of the world size and keeps
the state of its ceil(K/world) chunk. Both updates are compiled fused functions."""

import torch
import torch.distributed as dist
from torch import Tensor

from nanochat.common import COMPUTE_DTYPE


@torch.compile(dynamic=False, fullgraph=True)
def adamw_step_fused(p: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor,
                     step_t: Tensor, lr_t: Tensor, beta1_t: Tensor, beta2_t: Tensor,
                     eps_t: Tensor, wd_t: Tensor) -> None:
    """One AdamW update in fp32 (state and parameter may be 16-bit), written back in place."""
    p32, m32, v32, g32 = p.float(), exp_avg.float(), exp_avg_sq.float(), grad.float()
    p32.mul_(1 - lr_t * wd_t)
    m32.lerp_(g32, 1 - beta1_t)
    v32.lerp_(g32.square(), 1 - beta2_t)
    denom = (v32 / (1 - beta2_t**step_t)).sqrt() + eps_t
    p32.add_(m32 / denom * (-lr_t / (1 - beta1_t**step_t)))
    p.copy_(p32)
    exp_avg.copy_(m32)
    exp_avg_sq.copy_(v32)


_NS_COEFFS = (3.4445, -4.7750, 2.0315)


@torch.compile(dynamic=False, fullgraph=True)
def muon_step_fused(grads: Tensor, params: Tensor, momentum: Tensor, second_momentum: Tensor,
                    momentum_t: Tensor, lr_t: Tensor, wd_t: Tensor, beta2_t: Tensor,
                    ns_steps: int, red_dim: int) -> None:
    """Nesterov momentum, Newton-Schulz orthogonalisation (bf16 when computing in bf16), a
    factored second moment, a cautious update of the stacked parameters."""
    mu = momentum_t.to(grads.dtype)
    momentum.lerp_(grads, 1 - mu)
    g = grads.lerp_(momentum, mu)
    X = g.bfloat16() if COMPUTE_DTYPE == torch.bfloat16 else g
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    a, b, c = _NS_COEFFS
    tall = g.size(-2) > g.size(-1)
    for _ in range(ns_steps):
        A = X.mT @ X if tall else X @ X.mT
        B = b * A + c * (A @ A)
        X = a * X + (X @ B if tall else B @ X)
    g = X.to(params.dtype)
    v_mean = g.float().square().mean(dim=red_dim, keepdim=True)
    second_momentum.lerp_(v_mean.to(second_momentum.dtype), 1 - beta2_t.to(g.dtype))
    g = g * second_momentum.clamp_min(1e-10).rsqrt().to(g.dtype)
    lr, wd = lr_t.to(g.dtype), wd_t.to(g.dtype)
    params.sub_(lr * g + lr * wd * params * ((g * params) >= 0))



class MuonAdamW(torch.optim.Optimizer):
    """AdamW for the 'adamw' groups, Muon for the 'muon' groups; ZeRO-2-style on many ranks."""

    def __init__(self, param_groups):
        super().__init__(param_groups, defaults={})
        scalar = lambda: torch.tensor(0.0, dtype=torch.float32, device="cpu")  # noqa: E731
        self._adamw_t = {k: scalar() for k in ("step", "lr", "beta1", "beta2", "eps", "wd")}
        self._muon_t = {k: scalar() for k in ("momentum", "lr", "wd", "beta2")}

    # phase 1: every group's gradient reduction is launched before any update
    def _reduce_adamw(self, group, world):
        infos = {}
        for p in group["params"]:
            if world == 1:
                infos[p] = (None, p.grad, True)
            elif p.numel() < 1024:
                work = dist.all_reduce(p.grad, op=dist.ReduceOp.AVG, async_op=True)
                infos[p] = (work.get_future(), p.grad, True)
            else:
                assert p.shape[0] % world == 0, "AdamW reduce_scatter needs shape[0] % world == 0"
                grad_slice = torch.empty_like(p.grad[: p.shape[0] // world])
                work = dist.reduce_scatter_tensor(grad_slice, p.grad, op=dist.ReduceOp.AVG, async_op=True)
                infos[p] = (work.get_future(), grad_slice, False)
        return infos

    def _reduce_muon(self, group, world):
        params = group["params"]
        if world == 1:
            return None, torch.stack([p.grad for p in params]), None, len(params)
        chunk = -(-len(params) // world)
        p = params[0]
        grads = torch.stack([q.grad for q in params])
        stacked = torch.empty(chunk * world, *p.shape, dtype=p.dtype, device=p.device)
        stacked[: len(params)].copy_(grads)
        stacked[len(params):].zero_()
        grad_chunk = torch.empty(chunk, *p.shape, dtype=p.dtype, device=p.device)
        work = dist.reduce_scatter_tensor(grad_chunk, stacked, op=dist.ReduceOp.AVG, async_op=True)
        return work.get_future(), grad_chunk, stacked, chunk

    # phase 2: wait for a group's reduction, update what this rank owns, launch the gather
    def _update_adamw(self, group, infos, gathers, rank, world):
        t = self._adamw_t
        for p in group["params"]:
            future, grad, small = infos[p]
            if future is not None:
                future.wait()
            rows = p.shape[0] // world
            p_slice = p if small else p[rank * rows : (rank + 1) * rows]
            state = self.state[p]
            if not state:
                state.update(step=0, exp_avg=torch.zeros_like(p_slice), exp_avg_sq=torch.zeros_like(p_slice))
            state["step"] += 1
            for key, value in (("step", state["step"]), ("lr", group["lr"]), ("beta1", group["betas"][0]),
                               ("beta2", group["betas"][1]), ("eps", group["eps"]), ("wd", group["weight_decay"])):
                t[key].fill_(value)
            adamw_step_fused(p_slice, grad, state["exp_avg"], state["exp_avg_sq"], t["step"], t["lr"],
                             t["beta1"], t["beta2"], t["eps"], t["wd"])
            if not small:
                work = dist.all_gather_into_tensor(p, p_slice, async_op=True)
                gathers.append((work.get_future(), None, None))

    def _update_muon(self, group, info, gathers, rank):
        future, grad_chunk, stacked, chunk = info
        if future is not None:
            future.wait()
        params = group["params"]
        p = params[0]
        state = self.state[p]
        if "momentum_buffer" not in state:
            tall = p.shape[-2] >= p.shape[-1]
            second = (chunk, p.shape[-2], 1) if tall else (chunk, 1, p.shape[-1])
            state["momentum_buffer"] = torch.zeros(chunk, *p.shape, dtype=p.dtype, device=p.device)
            state["second_momentum_buffer"] = torch.zeros(second, dtype=p.dtype, device=p.device)
        red_dim = -1 if p.shape[-2] >= p.shape[-1] else -2
        start = rank * chunk
        owned = params[start : start + chunk]
        owned_stack = None
        if owned:
            owned_stack = torch.stack(owned)
            t = self._muon_t
            t["momentum"].fill_(group["momentum"])
            t["lr"].fill_(group["lr"] * max(1.0, p.shape[-2] / p.shape[-1]) ** 0.5)
            t["wd"].fill_(group["weight_decay"])
            t["beta2"].fill_(group["beta2"])
            n = len(owned)
            muon_step_fused(grad_chunk[:n], owned_stack, state["momentum_buffer"][:n],
                            state["second_momentum_buffer"][:n], t["momentum"], t["lr"], t["wd"],
                            t["beta2"], group["ns_steps"], red_dim)
        if stacked is None:
            gathers.append((None, owned_stack, params))
            return
        updated = torch.zeros(chunk, *p.shape, dtype=p.dtype, device=p.device)
        if owned:
            updated[: len(owned)].copy_(owned_stack)
        work = dist.all_gather_into_tensor(stacked, updated, async_op=True)
        gathers.append((work.get_future(), stacked, params))

    @torch.no_grad()
    def step(self):
        if dist.is_available() and dist.is_initialized():
            rank, world = dist.get_rank(), dist.get_world_size()
        else:
            rank, world = 0, 1
        reduced = [
            self._reduce_adamw(g, world) if g["kind"] == "adamw" else self._reduce_muon(g, world)
            for g in self.param_groups
        ]
        gathers = []
        for group, info in zip(self.param_groups, reduced):
            if group["kind"] == "adamw":
                self._update_adamw(group, info, gathers, rank, world)
            else:
                self._update_muon(group, info, gathers, rank)
        # phase 3: wait for the gathers, copy each Muon stack back onto its parameters
        for future, stacked, params in gathers:
            if future is not None:
                future.wait()
            if params is not None:
                torch._foreach_copy_(params, list(stacked[: len(params)].unbind(0)))
