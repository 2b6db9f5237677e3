"""Training data for the three stages: loading the `finetune build` shards, tokenising, packing, the
held-out split, curriculum pacing and a resumable sampler.

Stage 1 (causal LM): documents are tokenised, joined with EOS and cut into fixed-length blocks
(`pack_documents`). Each block carries `position_ids` that restart at every document segment and no
`attention_mask`: transformers (5.x, `masking_utils.find_packed_sequence_indices`) then builds a
block-diagonal causal mask from the restarts, so no token attends across a document boundary — with the
sdpa and eager kernels on CPU as with flash-attention's varlen path. That detection only runs when the
forward has no KV cache, so the model must run with `use_cache=False` (`prepare_model_for_packing`); the
first label of every segment is masked, so EOS never "predicts" the next, unrelated document.

Stages 2/3 (SFT): prompt and completion are tokenised separately (the boundary is exact), labels are
-100 on the prompt so the loss is on the answer only; a too-long example loses the *start* of its prompt
(the part furthest from the answer). Stage-3 book sections without a prompt train on their whole text.

Order: `StepSampler` maps a batch index to example indices with a pure function of (seed, index), so a
resumed run continues exactly the same order from any step, and DDP ranks take disjoint slices of each
global batch. Stage 3 uses it with the difficulty order ("ordered") or competence pacing.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch.utils.data import Dataset, Sampler

from lsp.prompt import PROMPT_FORMAT_VERSION

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

IGNORE_INDEX = -100  # what transformers' cross-entropy skips

Row = dict[str, Any]


# -- loading ---------------------------------------------------------------------------------------------


def shard_paths(datasets_dir: Path, stage: int) -> list[Path]:
    """The stage's JSONL shards in name order (the order `finetune build` wrote them)."""
    return sorted((Path(datasets_dir) / f"stage{stage}").glob("part-*.jsonl"))


def load_rows(
    datasets_dir: Path, stage: int, expect_prompt_format: str | None = PROMPT_FORMAT_VERSION
) -> list[Row]:
    """All rows of one stage. Rows rendered with another prompt format are refused (training must see
    what serving sends); pass `expect_prompt_format=None` to skip the check."""
    paths = shard_paths(datasets_dir, stage)
    if not paths:
        raise FileNotFoundError(f"no shards in {Path(datasets_dir) / f'stage{stage}'} (run `finetune build`)")
    rows: list[Row] = []
    for path in paths:
        with path.open(encoding="utf-8") as handle:
            rows.extend(json.loads(line) for line in handle if line.strip())
    if expect_prompt_format is not None:
        stale = {str(row.get("prompt_format")) for row in rows} - {expect_prompt_format}
        if stale:
            raise ValueError(
                f"stage {stage} rows use prompt format(s) {sorted(stale)}, expected {expect_prompt_format!r}: "
                "rebuild the datasets with `finetune build`"
            )
    return rows


def shards_digest(datasets_dir: Path, stage: int) -> str:
    """SHA-256 over the stage's shard names and bytes, for the run card."""
    digest = hashlib.sha256()
    for path in shard_paths(datasets_dir, stage):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


# -- held-out split --------------------------------------------------------------------------------------


def provenance_key(row: Row) -> str:
    """The file a row came from. Versions are left out on purpose: the same file from two releases is
    near-identical, and must not sit on both sides of the split."""
    prov = row.get("provenance") or {}
    return "\x1f".join(str(prov.get(key, "")) for key in ("source", "package", "path"))


def split_heldout(rows: Sequence[Row], fraction: float, seed: int = 0) -> tuple[list[Row], list[Row]]:
    """(train, held_out): whole files go to one side. The held-out files are those ranked first by a
    seeded hash of their key — independent of row order, so a rebuilt dataset keeps its split."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"held-out fraction must be in [0, 1), got {fraction}")
    keys = sorted({provenance_key(row) for row in rows})
    count = round(fraction * len(keys))
    if fraction > 0 and count == 0 and len(keys) > 1:
        count = 1  # a non-zero fraction of a small set still holds one file out
    ranked = sorted(keys, key=lambda key: hashlib.sha256(f"{seed}\x1f{key}".encode()).hexdigest())
    held = set(ranked[:count])
    train = [row for row in rows if provenance_key(row) not in held]
    heldout = [row for row in rows if provenance_key(row) in held]
    return train, heldout


# -- stage 1: packing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackingOptions:
    seq_len: int = 2048
    # Shuffle documents before packing so a block mixes files; blocks are ordered by the sampler later.
    shuffle_documents: bool = True
    # The last, partly filled block: padded (kept) or dropped.
    drop_last: bool = False
    seed: int = 0


@dataclass(frozen=True)
class PackedBlock:
    input_ids: list[int]
    position_ids: list[int]
    labels: list[int]


@dataclass(frozen=True)
class PackedData:
    blocks: list[PackedBlock]
    documents: int
    real_tokens: int  # tokens of the documents (EOS included) inside the blocks
    pad_tokens: int

    @property
    def packing_efficiency(self) -> float:
        """Share of non-pad tokens over all block positions."""
        total = self.real_tokens + self.pad_tokens
        return self.real_tokens / total if total else 0.0


def _segments(documents: Iterable[Sequence[int]], seq_len: int) -> Iterator[list[int]]:
    """Yield the pieces of one token stream, cut at document ends and block ends, with `[]` marking a
    block end (so the caller knows where one block stops)."""
    room = seq_len
    for doc in documents:
        start = 0
        while start < len(doc):
            take = min(room, len(doc) - start)
            yield list(doc[start : start + take])
            start += take
            room -= take
            if room == 0:
                yield []
                room = seq_len


def pack_documents(
    documents: Sequence[Sequence[int]], pad_id: int, options: PackingOptions = PackingOptions()
) -> PackedData:
    """Concatenate tokenised documents (each already ending with EOS) into blocks of `seq_len`.

    A document longer than the room left continues in the next block as a new segment (positions restart;
    RoPE is relative, so only the lost left context matters). Padding sits at the end of the last block as
    its own segment, with labels -100."""
    if options.seq_len < 2:
        raise ValueError("seq_len must be at least 2")
    order = list(range(len(documents)))
    if options.shuffle_documents:
        random.Random(options.seed).shuffle(order)
    blocks: list[PackedBlock] = []
    ids: list[int] = []
    pos: list[int] = []
    labels: list[int] = []
    real = 0
    for segment in _segments((documents[i] for i in order if documents[i]), options.seq_len):
        if segment:
            ids.extend(segment)
            pos.extend(range(len(segment)))
            # Label i is predicted from token i-1: the first token of a segment has no context here.
            labels.append(IGNORE_INDEX)
            labels.extend(segment[1:])
            real += len(segment)
            continue
        blocks.append(PackedBlock(ids, pos, labels))
        ids, pos, labels = [], [], []
    pad = 0
    if ids:
        if options.drop_last:
            real -= len(ids)
        else:
            pad = options.seq_len - len(ids)
            blocks.append(
                PackedBlock(ids + [pad_id] * pad, pos + list(range(pad)), labels + [IGNORE_INDEX] * pad)
            )
    return PackedData(blocks=blocks, documents=len(order), real_tokens=real, pad_tokens=pad)


def tokenize_documents(texts: Sequence[str], tokenizer: PreTrainedTokenizerBase) -> list[list[int]]:
    """Token ids per document with the tokenizer's own special tokens (BOS where it adds one) and EOS."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no EOS token: packed documents need a separator")
    if not texts:
        return []  # tokenizers fail on an empty batch; no held-out files (data.held_out = 0) is valid
    encoded = tokenizer(list(texts), add_special_tokens=True)["input_ids"]
    return [ids if ids and ids[-1] == eos else [*ids, eos] for ids in encoded]


def pack_rows(rows: Sequence[Row], tokenizer: PreTrainedTokenizerBase, options: PackingOptions) -> PackedData:
    """Stage-1 rows ("text") → packed blocks."""
    texts = [str(row.get("text") or "") for row in rows]
    return pack_documents(tokenize_documents(texts, tokenizer), pad_token_id(tokenizer), options)


def pad_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """Pad with the pad token, else EOS (pad positions never reach the loss)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise ValueError("the tokenizer has neither a pad nor an EOS token")
    return int(pad)


def prepare_model_for_packing(model: PreTrainedModel) -> None:
    """Packed blocks rely on transformers deriving per-document masks from `position_ids`, which it only
    does without a KV cache: turn the cache off for training forwards."""
    model.config.use_cache = False


# -- stages 2/3: prompt + completion ---------------------------------------------------------------------


@dataclass(frozen=True)
class SftOptions:
    max_len: int = 2048
    # When the answer alone is too long, at least this many prompt tokens stay (the answer is cut at its
    # end instead), so no example trains an answer without its question.
    min_prompt_tokens: int = 32


@dataclass(frozen=True)
class SftExample:
    input_ids: list[int]
    labels: list[int]
    prompt_truncated: int = 0  # prompt tokens cut from the left
    completion_truncated: int = 0  # answer tokens cut from the right


def encode_sft(
    prompt_ids: Sequence[int], completion_ids: Sequence[int], options: SftOptions, bos_id: int | None = None
) -> SftExample:
    """Join prompt and answer; labels only on the answer; cut the prompt from the left when too long
    (keeping a leading BOS, which the model expects at position 0)."""
    head = [bos_id] if bos_id is not None and list(prompt_ids[:1]) == [bos_id] else []
    body = list(prompt_ids[len(head) :])
    answer = list(completion_ids)
    budget = options.max_len - len(head)
    cut_answer = 0
    keep_prompt = min(len(body), options.min_prompt_tokens)
    if len(answer) > budget - keep_prompt:
        cut_answer = len(answer) - max(budget - keep_prompt, 0)
        answer = answer[: len(answer) - cut_answer]
    cut_prompt = max(len(body) + len(answer) - budget, 0)
    body = body[cut_prompt:]
    prompt = head + body
    return SftExample(
        input_ids=prompt + answer,
        labels=[IGNORE_INDEX] * len(prompt) + answer,
        prompt_truncated=cut_prompt,
        completion_truncated=cut_answer,
    )


def prompt_and_completion(row: Row) -> tuple[str, str]:
    """A row as (prompt, answer). Stage-3 book sections have text only: all of it is the answer."""
    completion = str(row.get("completion") or "")
    if completion:
        return str(row.get("prompt") or ""), completion
    return "", str(row.get("text") or "")


def encode_sft_rows(
    rows: Sequence[Row], tokenizer: PreTrainedTokenizerBase, options: SftOptions
) -> list[SftExample]:
    """Stage-2/3 rows → examples. The prompt gets the tokenizer's special tokens (BOS), the answer none
    but a final EOS so the model learns to stop."""
    eos = tokenizer.eos_token_id
    pairs = [prompt_and_completion(row) for row in rows]
    prompts = tokenizer([p for p, _ in pairs], add_special_tokens=True)["input_ids"]
    answers = tokenizer([c for _, c in pairs], add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    return [
        encode_sft(p, [*a, eos] if eos is not None else a, options, bos)
        for p, a in zip(prompts, answers, strict=True)
    ]


# -- datasets and collation ------------------------------------------------------------------------------


class ListDataset(Dataset[dict[str, list[int]]]):
    """Examples as dicts of token lists; the collators below turn a batch into tensors."""

    def __init__(self, examples: Sequence[PackedBlock | SftExample]) -> None:
        self.examples = list(examples)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return as_item(self.examples[index])


def as_item(example: PackedBlock | SftExample) -> dict[str, list[int]]:
    """An example as the collators take it: token lists by name (position_ids for packed blocks)."""
    item = {"input_ids": example.input_ids, "labels": example.labels}
    if isinstance(example, PackedBlock):
        item["position_ids"] = example.position_ids
    return item


def collate_packed(batch: Sequence[Mapping[str, Sequence[int]]]) -> dict[str, torch.Tensor]:
    """Stack equal-length blocks. No attention_mask on purpose: its absence is what lets transformers
    build the per-document mask from position_ids."""
    return {key: torch.tensor([item[key] for item in batch]) for key in ("input_ids", "position_ids", "labels")}


@dataclass(frozen=True)
class SftCollator:
    """Right-pads a batch to its longest example (rounded up to `multiple_of`, which tensor cores like)."""

    pad_id: int
    multiple_of: int = 1

    def __call__(self, batch: Sequence[Mapping[str, Sequence[int]]]) -> dict[str, torch.Tensor]:
        longest = max(len(item["input_ids"]) for item in batch)
        width = math.ceil(longest / self.multiple_of) * self.multiple_of
        ids, labels, mask = [], [], []
        for item in batch:
            pad = width - len(item["input_ids"])
            ids.append([*item["input_ids"], *[self.pad_id] * pad])
            labels.append([*item["labels"], *[IGNORE_INDEX] * pad])
            mask.append([1] * len(item["input_ids"]) + [0] * pad)
        return {
            "input_ids": torch.tensor(ids),
            "attention_mask": torch.tensor(mask),
            "labels": torch.tensor(labels),
        }


# -- order: curriculum and the resumable sampler ---------------------------------------------------------


def difficulty_order(rows: Sequence[Row]) -> list[int]:
    """Row indices easy → hard by meta.difficulty.score, then meta.curriculum_index, then row order (so a
    section's pairs follow it). Rows without a score sort last, keeping their order."""

    def key(index: int) -> tuple[float, float, int]:
        meta = rows[index].get("meta") or {}
        score = (meta.get("difficulty") or {}).get("score")
        position = meta.get("curriculum_index")
        return (
            float(score) if score is not None else math.inf,
            float(position) if position is not None else math.inf,
            index,
        )

    return sorted(range(len(rows)), key=key)


Order = Literal["shuffle", "ordered", "competence"]


@dataclass(frozen=True)
class SamplerOptions:
    """`shuffle`: a fresh seeded permutation each epoch. `ordered`: the given order (easy → hard) every
    epoch. `competence`: at optimizer step t only the easiest c(t)·N examples are drawn from (uniformly,
    seeded per batch), c(t) = min(1, (t·(1 − c0^p)/T + c0^p)^(1/p)) — the root-p competence schedule of
    competence-based curriculum learning; p=1 is linear."""

    batch_size: int = 1  # per rank
    order: Order = "shuffle"
    seed: int = 0
    num_replicas: int = 1  # DDP world size: each global batch is num_replicas · batch_size examples
    rank: int = 0
    grad_accum: int = 1  # batches per optimizer step (competence pacing counts optimizer steps)
    initial_competence: float = 0.1  # c0
    competence_steps: int = 1000  # T: optimizer steps until every example is available
    competence_power: float = 2.0  # p

    def problems(self) -> list[str]:
        found = []
        if self.batch_size < 1 or self.grad_accum < 1 or self.num_replicas < 1:
            found.append("batch_size, grad_accum and num_replicas must be ≥ 1")
        if not 0 <= self.rank < self.num_replicas:
            found.append(f"rank {self.rank} outside 0..{self.num_replicas - 1}")
        if self.order not in ("shuffle", "ordered", "competence"):
            found.append(f"unknown order {self.order!r} (shuffle | ordered | competence)")
        if not 0.0 < self.initial_competence <= 1.0:
            found.append("initial_competence must be in (0, 1]")
        if self.competence_steps < 1 or self.competence_power <= 0:
            found.append("competence_steps must be ≥ 1 and competence_power > 0")
        return found


def competence(step: int, options: SamplerOptions) -> float:
    """Share of the (difficulty-ordered) examples available at optimizer step `step`."""
    c0p = options.initial_competence**options.competence_power
    value = (step * (1.0 - c0p) / options.competence_steps + c0p) ** (1.0 / options.competence_power)
    return min(1.0, value)


def _seeded(*parts: int) -> random.Random:
    # A stable seed from the parts (Python's hash of ints is stable, but a digest is explicit).
    return random.Random(int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big"))


@dataclass
class StepSampler:
    """Example indices for every batch, a pure function of (options, batch index): resuming at a step
    needs no saved state beyond the step itself."""

    size: int
    options: SamplerOptions
    # The base order for "ordered"/"competence" (e.g. `difficulty_order(rows)`); identity by default.
    base_order: Sequence[int] | None = None
    _perm_cache: dict[int, list[int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        problems = self.options.problems()
        if self.size < 1:
            problems.append("the dataset is empty")
        if self.base_order is not None and sorted(self.base_order) != list(range(self.size)):
            problems.append("base_order must be a permutation of range(size)")
        if problems:
            raise ValueError("; ".join(problems))
        self.base = list(self.base_order) if self.base_order is not None else list(range(self.size))

    @property
    def global_batch(self) -> int:
        return self.options.batch_size * self.options.num_replicas

    def _epoch_order(self, epoch: int) -> list[int]:
        if self.options.order != "shuffle":
            return self.base
        if epoch not in self._perm_cache:
            perm = list(self.base)
            _seeded(self.options.seed, epoch).shuffle(perm)
            self._perm_cache = {epoch: perm}  # keep one epoch: batches are asked for in order
        return self._perm_cache[epoch]

    def batch(self, index: int) -> list[int]:
        """This rank's example indices for batch `index` (0-based, counting micro-batches)."""
        opts = self.options
        if opts.order == "competence":
            step = index // opts.grad_accum
            available = max(1, math.ceil(competence(step, opts) * self.size))
            rng = _seeded(opts.seed, index)
            # Without replacement inside a global batch; a pool smaller than the batch is cycled through
            # whole (each example once before any repeats), so ranks overlap as little as possible.
            picks = []
            while len(picks) < self.global_batch:
                picks.extend(rng.sample(range(available), min(available, self.global_batch - len(picks))))
            mine = picks[opts.rank * opts.batch_size : (opts.rank + 1) * opts.batch_size]
            return [self.base[i] for i in mine]
        start = index * self.global_batch + opts.rank * opts.batch_size
        out = []
        for position in range(start, start + opts.batch_size):
            epoch, offset = divmod(position, self.size)
            out.append(self._epoch_order(epoch)[offset])
        return out

    def batches(self, start: int = 0, stop: int | None = None) -> Iterator[list[int]]:
        """Batches `start`, `start+1`, … (endless without `stop`)."""
        index = start
        while stop is None or index < stop:
            yield self.batch(index)
            index += 1

    def first_batch_of_step(self, global_step: int) -> int:
        """The batch index a run resumed after `global_step` optimizer steps continues from."""
        return global_step * self.options.grad_accum

    def batches_per_epoch(self) -> int:
        return math.ceil(self.size / self.global_batch)


class StepBatchSampler(Sampler[list[int]]):
    """A `batch_sampler` for torch's DataLoader over `num_batches` batches of a `StepSampler`, starting at
    `start` (set it from the resumed global step with `first_batch_of_step`)."""

    def __init__(self, sampler: StepSampler, num_batches: int, start: int = 0) -> None:
        self.sampler = sampler
        self.num_batches = num_batches
        self.start = start

    def __iter__(self) -> Iterator[list[int]]:
        return self.sampler.batches(self.start, self.num_batches)

    def __len__(self) -> int:
        return max(self.num_batches - self.start, 0)
