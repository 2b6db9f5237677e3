"""`finetune train`: the stages of a run, one LoRA adapter carried through them.

    for each stage:  data → examples → resumable step sampler
                     loop: loss (+ EWC penalty from earlier stages) → optimizer step → log → checkpoint
                     end:  held-out loss, adapter saved, Fisher computed and consolidated into EWC

A plain training loop rather than `Trainer`: the EWC term, the curriculum sampler and exact resumption
(the data order is a function of the step, see `finetune.train.data.StepSampler`) stay visible and
testable. Checkpoints are directories written under a temporary name and renamed when complete, so
`--resume` after a crash or `kill -9` continues from the newest complete one and loses at most the last
interval. Under `torchrun` / `accelerate launch` the same loop runs data-parallel (DDP): every rank starts
from the same seeded adapter, draws its slice of each global batch, and rank 0 writes; the run card
records each rank's adapter digest, which must agree. Before the stages named in `ssr.stages`, self-synthesized
rehearsal of the earlier stages' tasks joins the training data. The backend (hf, or Unsloth in
`finetune.train.unsloth_backend`) decides only how the base and adapter are loaded (`load_model`).
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import get_scheduler

from finetune.train.config import RunConfig, StageConfig, effective_qlora, probe_environment, resolve_device
from finetune.train.data import (
    PackingOptions,
    SamplerOptions,
    SftCollator,
    SftOptions,
    StepSampler,
    as_item,
    collate_packed,
    difficulty_order,
    encode_sft_rows,
    load_rows,
    pack_rows,
    pad_token_id,
    prepare_model_for_packing,
    shards_digest,
    split_heldout,
)
from finetune.train.ewc import EWC, FisherOptions, fisher_diagonal
from finetune.train.general_anchor import anchor_general_english
from finetune.train.model import (
    LoraOptions,
    adapter_parameters,
    attach_lora,
    load_adapter,
    load_base,
    save_adapter,
)
from finetune.train.ssr import SsrOptions, rehearsal_rows
from lsp.prompt import PROMPT_FORMAT_VERSION

CHECKPOINT_PREFIX = "checkpoint-"
COMPLETE_MARKER = "COMPLETE"


@dataclass
class StageResult:
    stage: int
    steps: int
    examples: int
    train_loss: float
    heldout_loss: float | None
    tokens: int
    seconds: float
    packing_efficiency: float | None = None
    adapter: str = ""

    @property
    def heldout_perplexity(self) -> float | None:
        return None if self.heldout_loss is None else math.exp(self.heldout_loss)


@dataclass
class RunState:
    """What a checkpoint records besides the tensors: where the run is."""

    stage: int
    step: int  # optimizer steps completed in `stage`
    completed_stages: list[int] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    training_digest: str = ""


# -- distributed -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Distributed:
    """The process group of a `torchrun` / `accelerate launch` run (world 1 = a plain run)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: str) -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        return cls(torch.distributed.get_rank(), world)

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def gather(self, value: Any) -> list[Any]:
        if self.world == 1:
            return [value]
        gathered: list[Any] = [None] * self.world
        torch.distributed.all_gather_object(gathered, value)
        return gathered


def adapter_digest(params: dict[str, torch.nn.Parameter]) -> str:
    """A hash of the adapter's values: equal on every rank of a correct distributed run."""
    import hashlib

    digest = hashlib.sha256()
    for name in sorted(params):
        digest.update(name.encode())
        digest.update(params[name].detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()


# -- data --------------------------------------------------------------------------------------------------
@dataclass
class StageData:
    examples: list[Any]
    collate: Callable[[Sequence[Any]], dict[str, torch.Tensor]]
    heldout: list[Any]
    order: str  # sampler order
    base_order: list[int] | None
    packing_efficiency: float | None
    digest: str


def stage_data(config: RunConfig, stage: int, tokenizer: Any, rehearsal: Sequence[dict[str, Any]] = ()) -> StageData:
    datasets = Path(config.data.datasets)
    rows = load_rows(datasets, stage)
    settings = config.training.stage(stage)
    train, heldout = split_heldout(rows, config.data.held_out, settings.seed)
    train = [*train, *rehearsal]  # synthetic rehearsal trains, never evaluates
    max_len = config.model.max_seq_len
    if stage == 1:
        packing = PackingOptions(seq_len=max_len, seed=settings.seed)
        packed, held = pack_rows(train, tokenizer, packing), pack_rows(heldout, tokenizer, packing)
        return StageData(
            [as_item(b) for b in packed.blocks], collate_packed, [as_item(b) for b in held.blocks],
            "shuffle", None, packed.packing_efficiency, shards_digest(datasets, stage),
        )
    sft = SftOptions(max_len=max_len)
    collate = SftCollator(pad_token_id(tokenizer))
    examples = [as_item(e) for e in encode_sft_rows(train, tokenizer, sft)]
    held_examples = [as_item(e) for e in encode_sft_rows(heldout, tokenizer, sft)]
    order, base_order = "shuffle", None
    if stage == 3:
        pacing = config.training.stage3.pacing
        if pacing != "shuffle":
            order, base_order = pacing, difficulty_order(train)
    return StageData(examples, collate, held_examples, order, base_order, None, shards_digest(datasets, stage))


def total_steps(settings: StageConfig, examples: int, global_batch: int) -> int:
    if settings.max_steps > 0:
        return settings.max_steps
    return max(1, math.ceil(settings.epochs * examples / global_batch))


def sampler_for(config: RunConfig, stage: int, data: StageData, steps: int, dist: Distributed) -> StepSampler:
    """Each rank draws its slice of every global batch; the order is the same for any world size."""
    settings = config.training.stage(stage)
    pacing: dict[str, Any] = {}
    if stage == 3 and data.order == "competence":
        s3 = config.training.stage3
        pacing = {"initial_competence": s3.start_fraction, "competence_power": s3.competence_power,
                  "competence_steps": max(1, round(s3.ramp_fraction * steps))}
    options = SamplerOptions(
        batch_size=settings.batch_size, order=data.order, seed=settings.seed, grad_accum=settings.grad_accum,
        num_replicas=dist.world, rank=dist.rank, **pacing,
    )
    return StepSampler(len(data.examples), options, data.base_order)


# -- checkpoints -------------------------------------------------------------------------------------------
def checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints, oldest first (a folder without the marker was interrupted mid-write)."""
    folder = root / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.name.startswith(CHECKPOINT_PREFIX) and (p / COMPLETE_MARKER).exists()]
    return sorted(found, key=lambda p: json.loads((p / "state.json").read_text())["sequence"])


def save_checkpoint(root: Path, model: Any, optimizer: Any, scheduler: Any, ewc: EWC, state: RunState,
                    keep_last: int, tokenizer: Any = None) -> Path:
    folder = root / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    sequence = len(list(folder.iterdir())) + int(time.time() * 1000)
    final = folder / f"{CHECKPOINT_PREFIX}stage{state.stage}-step{state.step:06d}"
    partial = folder / f".partial-{final.name}-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    save_adapter(model, partial / "adapter", tokenizer=tokenizer)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, partial / "optimizer.pt")
    if ewc.active:
        ewc.save(partial / "ewc.safetensors")
    (partial / "state.json").write_text(json.dumps({**vars(state), "sequence": sequence}), encoding="utf-8")
    (partial / COMPLETE_MARKER).write_text("", encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    for old in checkpoints(root)[:-keep_last] if keep_last > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


# -- the loop ----------------------------------------------------------------------------------------------
def _loss(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(**batch).loss


def _batches(data: StageData, sampler: StepSampler, start: int, stop: int) -> Iterator[dict[str, torch.Tensor]]:
    for indices in sampler.batches(start, stop):
        yield data.collate([data.examples[i] for i in indices])


@torch.no_grad()
def heldout_loss(model: Any, data: StageData, batch_size: int, limit: int = 0) -> float | None:
    """Mean loss per predicted token over the held-out examples (the first `limit`, when > 0)."""
    examples = data.heldout[:limit] if limit > 0 else data.heldout
    if not examples:
        return None
    model.eval()
    total, tokens = 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = data.collate(examples[start : start + batch_size])
        count = int((batch["labels"][:, 1:] != -100).sum())
        if count:
            total += float(model(**batch).loss) * count
            tokens += count
    model.train()
    return total / tokens if tokens else None


class MetricsLog:
    """CSV (and TensorBoard when asked) of step metrics; the CSV also feeds the stage plot."""

    FIELDS = ("stage", "step", "loss", "ewc_penalty", "lr", "tokens_per_s", "seconds")

    def __init__(self, root: Path, config: RunConfig) -> None:
        self.path = root / "metrics.csv"
        self.csv = config.logging.csv
        self.writer = None
        if config.logging.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(root / "tensorboard"))

    def log(self, row: dict[str, float]) -> None:
        if self.csv:
            new = not self.path.exists()
            with self.path.open("a", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=self.FIELDS)
                if new:
                    writer.writeheader()
                writer.writerow({key: row.get(key, "") for key in self.FIELDS})
        if self.writer is not None:
            step = int(row["step"])
            for key in ("loss", "ewc_penalty", "lr", "tokens_per_s"):
                self.writer.add_scalar(f"stage{int(row['stage'])}/{key}", row[key], step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def plot_stage(root: Path, stage: int) -> Path | None:
    """PNG of loss, EWC penalty and learning rate over the stage's steps."""
    path = root / "metrics.csv"
    if not path.exists():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with path.open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if int(r["stage"]) == stage]
    if not rows:
        return None
    steps = [int(r["step"]) for r in rows]
    figure, axes = plt.subplots(3, 1, figsize=(7, 7), sharex=True)
    for axis, key, label in zip(axes, ("loss", "ewc_penalty", "lr"), ("loss", "EWC penalty", "learning rate"), strict=True):
        axis.plot(steps, [float(r[key]) for r in rows])
        axis.set_ylabel(label)
    axes[-1].set_xlabel("optimizer step")
    figure.suptitle(f"stage {stage}")
    figure.tight_layout()
    out = root / f"stage{stage}.png"
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out


@dataclass
class TrainSession:
    config: RunConfig
    root: Path
    model: Any  # the PEFT model (never the DDP wrapper: saving and evaluating use it directly)
    tokenizer: Any
    ewc: EWC
    say: Callable[[str], None]
    dist: Distributed = field(default_factory=Distributed)

    def trainable(self) -> Any:
        """What the training forward runs through: DDP around the model in a distributed run."""
        if self.dist.world == 1:
            return self.model
        return torch.nn.parallel.DistributedDataParallel(self.model)


def train_stage(session: TrainSession, stage: int, state: RunState, resume_from: Path | None) -> StageResult:
    config, model = session.config, session.model
    settings = config.training.stage(stage)
    torch.manual_seed(settings.seed)
    ssr_stats: dict[str, int] = {}
    rehearsal = synthesize_rehearsal(session, stage, ssr_stats) if stage in config.ssr.stages and stage > 1 else []
    data = stage_data(config, stage, session.tokenizer, rehearsal)
    if not data.examples:
        raise ValueError(f"stage {stage}: no training examples in {config.data.stage_path(stage)}")
    if stage == 1:
        prepare_model_for_packing(model)
    params = adapter_parameters(model)
    optimizer = torch.optim.AdamW(params.values(), lr=settings.lr, weight_decay=settings.weight_decay)
    dist = session.dist
    forward = session.trainable()
    global_batch = settings.batch_size * settings.grad_accum * dist.world
    steps = total_steps(settings, len(data.examples), global_batch)
    warmup = round(settings.warmup * steps) if settings.warmup < 1 else int(settings.warmup)
    scheduler = get_scheduler(settings.scheduler, optimizer, num_warmup_steps=warmup, num_training_steps=steps)
    start = 0
    if resume_from is not None:
        saved = torch.load(resume_from / "optimizer.pt", weights_only=False)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        start = state.step
        session.say(f"stage {stage}: resuming at step {start}/{steps}")
    sampler = sampler_for(config, stage, data, steps, dist)
    metrics = MetricsLog(session.root, config) if dist.main else None
    model.train()
    started = time.perf_counter()
    tokens = 0
    last_loss = float("nan")
    try:
        for step in range(start, steps):
            step_started = time.perf_counter()
            step_tokens = 0
            loss_total = 0.0
            penalty_value = 0.0
            first = sampler.first_batch_of_step(step)
            for batch in _batches(data, sampler, first, first + settings.grad_accum):
                loss = _loss(forward, batch) / settings.grad_accum
                if session.ewc.active:
                    penalty = session.ewc.penalty(params) / settings.grad_accum
                    penalty_value += float(penalty.detach())
                    loss = loss + penalty
                loss.backward()
                loss_total += float(loss.detach())
                step_tokens += int(batch["input_ids"].numel())
            torch.nn.utils.clip_grad_norm_(params.values(), settings.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            tokens += step_tokens
            last_loss = loss_total - penalty_value
            state.step = step + 1
            if metrics is not None and (state.step % config.logging.every_steps == 0 or state.step == steps):
                metrics.log({
                    "stage": stage, "step": state.step, "loss": last_loss, "ewc_penalty": penalty_value,
                    "lr": scheduler.get_last_lr()[0],
                    "tokens_per_s": step_tokens / max(time.perf_counter() - step_started, 1e-9),
                    "seconds": time.perf_counter() - started,
                })
                session.say(f"stage {stage} step {state.step}/{steps} loss {last_loss:.4f} ewc {penalty_value:.4f}")
            if config.checkpoints.every_steps and state.step % config.checkpoints.every_steps == 0 and state.step < steps:
                _checkpoint(session, optimizer, scheduler, state)
    finally:
        if metrics is not None:
            metrics.close()
    seconds = time.perf_counter() - started
    held = heldout_loss(model, data, settings.batch_size, config.data.heldout_examples)
    adapter_dir = session.root / f"stage{stage}" / "adapter"
    if dist.main:
        save_adapter(model, adapter_dir, tokenizer=session.tokenizer)
    rank_digests = dist.gather(adapter_digest(params))
    if config.ewc.enabled:
        fisher_batches = [data.collate([example]) for example in data.examples[: config.ewc.fisher_samples]]
        fisher = fisher_diagonal(model, params, fisher_batches, _loss,
                                 FisherOptions(max_batches=None, normalize=config.ewc.normalise))
        session.ewc.consolidate(params, fisher)
    if config.logging.plots and dist.main:
        plot_stage(session.root, stage)
    result = StageResult(stage, steps, len(data.examples), last_loss, held, tokens * dist.world, seconds,
                         data.packing_efficiency, str(adapter_dir))
    state.completed_stages.append(stage)
    state.results.append({**vars(result), "heldout_perplexity": result.heldout_perplexity, "data_digest": data.digest,
                          "world_size": dist.world, "rank_adapter_digests": rank_digests, "ssr": ssr_stats})
    _checkpoint(session, optimizer, scheduler, state)
    return result


def synthesize_rehearsal(session: TrainSession, stage: int, stats: dict[str, int]) -> list[dict[str, Any]]:
    """SSR rows for the earlier stages' tasks: the base model samples, the latest adapter answers."""
    config = session.config
    earlier = [s for s in (2, 3) if s < stage and s in config.training.stages]
    rows = [row for s in earlier for row in load_rows(Path(config.data.datasets), s)]
    if not rows:
        return []
    ssr = config.ssr
    options = SsrOptions(examples_per_task=ssr.examples_per_task, shots=ssr.shots, synthesized=ssr.synthesized,
                         keep=ssr.keep, clusters=ssr.clusters, seed=config.training.stage(stage).seed)
    base, latest = _generators(session)
    synthetic = rehearsal_rows(rows, stage, base, latest, options, stats)
    session.say(f"stage {stage}: SSR sampled {stats['sampled']}, parsed {stats['parsed']}, kept {stats['kept']}")
    return synthetic


def _generators(session: TrainSession) -> tuple[Any, Any]:
    """(base sampler, latest greedy answerer) over the PEFT model: the adapter off for the base."""
    from contextlib import nullcontext

    model, tokenizer, ssr = session.model, session.tokenizer, session.config.ssr
    budget = max(8, session.config.model.max_seq_len - ssr.max_new_tokens)

    def generate(prompt: str, sample: bool, adapter: bool) -> str:
        ids = tokenizer(prompt, return_tensors="pt")["input_ids"][:, -budget:].to(model.device)
        sampling = {"do_sample": True, "temperature": ssr.temperature, "top_p": ssr.top_p} if sample else {"do_sample": False}
        context = nullcontext() if adapter else model.disable_adapter()
        model.eval()
        with torch.no_grad(), context:
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=ssr.max_new_tokens,
                                 pad_token_id=pad_token_id(tokenizer), use_cache=True, **sampling)
        model.train()
        return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)

    return (lambda prompt, sample: generate(prompt, sample, adapter=False),
            lambda prompt, sample: generate(prompt, sample, adapter=True))


def _checkpoint(session: TrainSession, optimizer: Any, scheduler: Any, state: RunState) -> None:
    """Rank 0 writes; the others wait, so no rank runs ahead of a checkpoint it may resume from."""
    if session.dist.main:
        save_checkpoint(session.root, session.model, optimizer, scheduler, session.ewc, state,
                        session.config.checkpoints.keep_last)
    session.dist.barrier()


def load_model(config: RunConfig, device: str, quantize_4bit: bool, options: LoraOptions,
               adapter: Path | None) -> tuple[Any, Any]:
    """(PEFT model, tokenizer) through the configured backend: a fresh adapter, or `adapter` (a checkpoint's)
    to continue. The backends differ only here; the loop, EWC, SSR and checkpoints are shared."""
    if config.backend == "unsloth":
        from finetune.train.unsloth_backend import load_unsloth

        return load_unsloth(config.model.base, dtype=config.model.dtype, device=device, quantize_4bit=quantize_4bit,
                            max_seq_len=config.model.max_seq_len, options=options,
                            cache_dir=config.output_path / "base-hf", adapter=adapter)
    model, tokenizer = load_base(config.model.base, dtype=config.model.dtype, device=device,
                                 quantize_4bit=quantize_4bit)
    if adapter is not None:
        return load_adapter(model, adapter, gradient_checkpointing=options.gradient_checkpointing), tokenizer
    return attach_lora(model, options), tokenizer


def run(config: RunConfig, *, stages: Sequence[int] | None = None, resume: bool = False,
        say: Callable[[str], None] = print) -> dict[str, Any]:
    """Train the configured stages (or `stages`), continuing one adapter; returns the run card."""
    root = config.output_path
    root.mkdir(parents=True, exist_ok=True)
    env = probe_environment()
    device = resolve_device(config.device, env)
    dist = Distributed.from_env(device)
    if not dist.main:
        say = _silent
    lora = config.lora
    options = LoraOptions(r=lora.rank, alpha=lora.alpha, dropout=lora.dropout, target_modules=tuple(lora.target_modules),
                          bias=lora.bias, use_rslora=lora.use_rslora,
                          gradient_checkpointing=config.training.stage(1).gradient_checkpointing)
    wanted = list(stages or config.training.stages)
    state = RunState(stage=wanted[0], step=0, training_digest=config.training_digest())
    ewc = EWC(lam=config.ewc.lambda_, gamma=config.ewc.gamma)
    saved_checkpoints = checkpoints(root) if resume else []
    latest = saved_checkpoints[-1] if saved_checkpoints else None
    if latest is not None:
        saved = json.loads((latest / "state.json").read_text(encoding="utf-8"))
        if saved["training_digest"] != state.training_digest:
            raise ValueError(f"{latest}: written by a run with other training settings; cannot resume it")
        saved.pop("sequence", None)
        state = RunState(**saved)
        if (latest / "ewc.safetensors").exists():
            ewc = EWC.load(latest / "ewc.safetensors")
    model, tokenizer = load_model(config, device, effective_qlora(config, env), options,
                                  latest / "adapter" if latest is not None else None)
    if latest is not None:
        say(f"resuming from {latest.name}: stages done {state.completed_stages}")
    session = TrainSession(config, root, model, tokenizer, ewc, say, dist)
    if latest is None:  # a fresh adapter is the base itself: anchor its general English before training
        anchor_general_english(model, tokenizer, ewc, config, say)
    for stage in wanted:
        if stage in state.completed_stages:
            continue
        resume_from = latest if latest is not None and state.stage == stage and state.step > 0 else None
        if resume_from is None:
            state.stage, state.step = stage, 0
        result = train_stage(session, stage, state, resume_from)
        latest = None
        say(f"stage {stage} done: {result.steps} steps, train loss {result.train_loss:.4f}, "
            f"held-out perplexity {result.heldout_perplexity}")
    card = run_card(config, state)
    if config.backend == "unsloth":
        from finetune.train.unsloth_backend import unsloth_summary

        card["unsloth"] = unsloth_summary(model)
    if dist.main:
        (root / "run_card.json").write_text(json.dumps(card, indent=2, default=str), encoding="utf-8")
    dist.barrier()
    return card


def _silent(message: str) -> None:
    """Ranks other than 0 print nothing: one run, one log."""


def run_card(config: RunConfig, state: RunState) -> dict[str, Any]:
    import peft
    import transformers

    return {
        "config": config.to_dict(),
        "config_digest": config.digest(),
        "prompt_format": PROMPT_FORMAT_VERSION,
        "stages": state.results,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
                     "python": platform.python_version()},
    }
