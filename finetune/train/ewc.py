"""Elastic weight consolidation over the LoRA adapter, online across stages.

After stage k has trained, `fisher_diagonal` estimates how much each adapter weight matters to stage k's
data (the diagonal empirical Fisher: mean squared gradient of the loss); `EWC.consolidate` stores it with
a detached fp32 copy of the weights θ*. During stage k+1 the loss adds `EWC.penalty`,
λ/2 · Σ F (θ − θ*)², pulling important weights back towards where they were. Online EWC keeps one anchor
(the latest weights) and decays older importance: F ← γ·F_old + F_new.

Why the choices below:
- The Fisher is computed at the *trained* weights: a fresh LoRA pair has B = 0, so A gets no gradient and
  would look unimportant forever.
- Only trainable parameters have a Fisher; asking for a frozen (e.g. 4-bit base) weight is an error.
- Raw Fisher values of LoRA weights under a token-mean loss are tiny (~1e-6) and their scale depends on
  sequence length and batch size, so λ would have to be re-tuned per run. Normalising by the global mean
  (or max) over all adapter entries makes λ comparable between runs while keeping the *relative*
  importance between tensors (one scale for all of them, not one per tensor).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

log = logging.getLogger(__name__)

Normalize = Literal["mean", "max", "none"]
B = TypeVar("B")


@dataclass(frozen=True)
class FisherOptions:
    # Batches to average over (None: all given). One example per batch gives the per-example empirical
    # Fisher; a batch of n squares the *mean* gradient, which is cheaper but smaller by about 1/n and
    # favours directions shared by the batch — normalisation hides the scale, not the shape.
    max_batches: int | None = 64
    normalize: Normalize = "mean"


@dataclass(frozen=True)
class EWCOptions:
    lam: float = 1.0  # λ: strength of the pull back to θ*
    gamma: float = 1.0  # γ: decay of earlier stages' Fisher at each consolidation (1 = plain sum)
    fisher: FisherOptions = FisherOptions()


def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The parameters that train (the adapter), by name, seen through a DDP wrapper so that names match
    between the single-process and distributed runs."""
    if isinstance(model, nn.parallel.DistributedDataParallel):
        model = model.module
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def normalize_fisher(fisher: Mapping[str, Tensor], how: Normalize) -> dict[str, Tensor]:
    """Divide every tensor by one scale: the mean or max over all entries of all tensors."""
    if how == "none" or not fisher:
        return dict(fisher)
    if how == "mean":
        total = sum(float(f.sum()) for f in fisher.values())
        count = sum(f.numel() for f in fisher.values())
        scale = total / count if count else 0.0
    elif how == "max":
        scale = max(float(f.max()) for f in fisher.values() if f.numel()) if fisher else 0.0
    else:
        raise ValueError(f"unknown Fisher normalisation {how!r} (mean | max | none)")
    if scale <= 0.0 or not math.isfinite(scale):
        log.warning("Fisher is zero everywhere (an untrained adapter?): left unnormalised")
        return dict(fisher)
    return {name: f / scale for name, f in fisher.items()}


def _all_reduce_mean(fisher: dict[str, Tensor]) -> None:
    # Under DDP each rank estimated F on its own shard: average them so every rank holds the same F.
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    world = torch.distributed.get_world_size()
    for f in fisher.values():
        torch.distributed.all_reduce(f, op=torch.distributed.ReduceOp.SUM)
        f /= world


def fisher_diagonal(
    model: nn.Module,
    params: Mapping[str, nn.Parameter],
    batches: Iterable[B],
    loss_fn: Callable[[nn.Module, B], Tensor],
    options: FisherOptions = FisherOptions(),
) -> dict[str, Tensor]:
    """Diagonal empirical Fisher of `params`: the mean over batches of (∂loss/∂θ)², in fp32, then
    normalised (see `FisherOptions`).

    Pass the unwrapped model (not a DDP wrapper: its backward would average gradients across ranks
    before they are squared); with torch.distributed initialised, the per-rank estimates are averaged
    afterwards. Dropout is off while measuring, and gradients already held by the model are restored, so
    this can run in the middle of training."""
    frozen = [name for name, p in params.items() if not p.requires_grad]
    if frozen:
        raise ValueError(f"frozen parameters have no Fisher: {frozen[:5]}{' …' if len(frozen) > 5 else ''}")
    fisher = {name: torch.zeros_like(p, dtype=torch.float32) for name, p in params.items()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    saved = [p.grad for p in trainable]
    was_training = model.training
    model.eval()
    seen = 0
    try:
        for batch in batches:
            if options.max_batches is not None and seen >= options.max_batches:
                break
            for p in trainable:
                p.grad = None
            loss_fn(model, batch).backward()
            for name, p in params.items():
                if p.grad is not None:
                    fisher[name] += p.grad.detach().float() ** 2
            seen += 1
    finally:
        for p, grad in zip(trainable, saved, strict=True):
            p.grad = grad
        model.train(was_training)
    if seen == 0:
        raise ValueError("no batches to estimate the Fisher from")
    for f in fisher.values():
        f /= seen
    _all_reduce_mean(fisher)
    unused = [name for name, f in fisher.items() if not bool(f.any())]
    if unused:
        log.warning("%d of %d parameters have zero Fisher (e.g. %s)", len(unused), len(fisher), unused[0])
    return normalize_fisher(fisher, options.normalize)


class EWC:
    """Anchors θ* and Fisher F of the consolidated stages, and the penalty they impose."""

    def __init__(self, lam: float = 1.0, gamma: float = 1.0) -> None:
        if lam < 0 or not 0 <= gamma <= 1:
            raise ValueError("EWC needs λ ≥ 0 and 0 ≤ γ ≤ 1")
        self.lam = lam
        self.gamma = gamma
        self.fisher: dict[str, Tensor] = {}
        self.anchors: dict[str, Tensor] = {}
        self.consolidations = 0

    @classmethod
    def from_options(cls, options: EWCOptions) -> EWC:
        return cls(options.lam, options.gamma)

    @property
    def active(self) -> bool:
        return bool(self.fisher) and self.lam > 0

    def consolidate(self, params: Mapping[str, Tensor], fisher: Mapping[str, Tensor]) -> None:
        """End of a stage: F ← γ·F + F_new, and θ* ← the current weights (detached fp32 clones — a plain
        reference would follow the optimizer's in-place updates and make the penalty vanish)."""
        missing = sorted(set(fisher) - set(params))
        if missing:
            raise KeyError(f"Fisher for parameters not given: {missing[:5]}")
        merged = {name: self.gamma * f.cpu() for name, f in self.fisher.items()}
        for name, f in fisher.items():
            new = f.detach().float().cpu()
            merged[name] = merged[name] + new if name in merged else new.clone()
        self.fisher = merged
        self.anchors = {name: params[name].detach().float().cpu().clone() for name in self.fisher}
        self.consolidations += 1

    def penalty(self, params: Mapping[str, Tensor]) -> Tensor:
        """λ/2 · Σ F (θ − θ*)² in fp32, differentiable in `params`; 0 before the first consolidation."""
        device = next(iter(params.values())).device if params else torch.device("cpu")
        total = torch.zeros((), dtype=torch.float32, device=device)
        if not self.active:
            return total
        missing = sorted(set(self.fisher) - set(params))
        if missing:
            raise KeyError(f"EWC anchors for parameters not given: {missing[:5]}")
        for name, f in self.fisher.items():
            theta = params[name]
            f, anchor = self._on(name, theta.device)
            total = total + (f * (theta.float() - anchor) ** 2).sum()
        return 0.5 * self.lam * total

    def _on(self, name: str, device: torch.device) -> tuple[Tensor, Tensor]:
        # Move F and θ* next to the weights once, not at every step.
        f, anchor = self.fisher[name], self.anchors[name]
        if f.device != device:
            f, anchor = f.to(device), anchor.to(device)
            self.fisher[name], self.anchors[name] = f, anchor
        return f, anchor

    # -- persistence: saved next to each checkpoint -----------------------------------------------------

    def state_dict(self) -> dict[str, Tensor]:
        """Tensors "fisher/<name>" and "anchor/<name>" plus the settings as 0-d tensors."""
        state: dict[str, Tensor] = {}
        for name in self.fisher:
            state[f"fisher/{name}"] = self.fisher[name].detach().cpu().contiguous()
            state[f"anchor/{name}"] = self.anchors[name].detach().cpu().contiguous()
        state["meta/lam"] = torch.tensor(self.lam, dtype=torch.float64)
        state["meta/gamma"] = torch.tensor(self.gamma, dtype=torch.float64)
        state["meta/consolidations"] = torch.tensor(self.consolidations, dtype=torch.int64)
        return state

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        fisher = {k.removeprefix("fisher/"): v.float() for k, v in state.items() if k.startswith("fisher/")}
        anchors = {k.removeprefix("anchor/"): v.float() for k, v in state.items() if k.startswith("anchor/")}
        if set(fisher) != set(anchors):
            raise ValueError("EWC state has Fisher and anchors for different parameters")
        self.fisher, self.anchors = fisher, anchors
        self.lam = float(state["meta/lam"])
        self.gamma = float(state["meta/gamma"])
        self.consolidations = int(state["meta/consolidations"])

    def save(self, path: Path) -> None:
        """safetensors, with the settings also readable as JSON metadata."""
        meta = {"lam": self.lam, "gamma": self.gamma, "consolidations": self.consolidations}
        save_file(self.state_dict(), str(path), metadata={"ewc": json.dumps(meta)})

    @classmethod
    def load(cls, path: Path) -> EWC:
        ewc = cls()
        ewc.load_state_dict(load_file(str(path)))
        return ewc
