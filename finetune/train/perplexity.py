"""Token-level perplexity of a causal LM on a text, in fixed-size, non-overlapping blocks.

    blocks = text_blocks(text, tokenizer, block_len=512)     # the text's tokens, cut every 512
    perplexity(model, blocks).perplexity                     # exp(mean NLL of every predicted token)

The whole text is tokenized once (no special tokens) and cut into consecutive blocks, so the result is
deterministic and every token is scored at most once; the first token of each block has no context and
is not scored. Used to measure held-out Elixir and general English (forgetting) before and after training,
and by the general-English EWC anchor, which takes its Fisher blocks from here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Perplexity:
    perplexity: float
    mean_nll: float  # nats per predicted token
    tokens: int  # predicted tokens
    blocks: int


def text_blocks(text: str, tokenizer: Any, block_len: int, max_blocks: int = 0) -> list[list[int]]:
    """The text's token ids in consecutive blocks of `block_len` (the last one shorter), the first
    `max_blocks` of them when > 0. A last block of one token predicts nothing and is dropped."""
    if block_len < 2:
        raise ValueError(f"block_len must be at least 2, got {block_len}")
    # verbose=False: a long text is cut into blocks here, so the "longer than the model" warning is noise.
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    blocks = [ids[start : start + block_len] for start in range(0, len(ids), block_len)]
    blocks = [block for block in blocks if len(block) >= 2]
    return blocks[:max_blocks] if max_blocks > 0 else blocks


def _batch(blocks: Sequence[Sequence[int]], pad_id: int, device: Any) -> dict[str, torch.Tensor]:
    """Right-padded ids, mask and labels (pads are neither attended to nor scored)."""
    width = max(len(block) for block in blocks)
    ids = torch.full((len(blocks), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(blocks), width), dtype=torch.long)
    for row, block in enumerate(blocks):
        ids[row, : len(block)] = torch.tensor(block, dtype=torch.long)
        mask[row, : len(block)] = 1
    labels = ids.masked_fill(mask == 0, IGNORE_INDEX)
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}


@torch.no_grad()
def perplexity(model: Any, blocks: Sequence[Sequence[int]], batch_size: int = 2, pad_id: int = 0) -> Perplexity:
    """exp of the mean negative log-likelihood over every predicted token of `blocks`."""
    if not blocks:
        raise ValueError("no text to measure perplexity on")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, tokens = 0.0, 0
    try:
        for start in range(0, len(blocks), batch_size):
            batch = _batch(blocks[start : start + batch_size], pad_id, device)
            count = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
            # The model's loss is the mean over the batch's predicted tokens: weight it back to a sum.
            total += float(model(**batch, use_cache=False).loss) * count
            tokens += count
    finally:
        model.train(was_training)
    mean = total / tokens
    return Perplexity(math.exp(mean), mean, tokens, len(blocks))


def file_perplexity(model: Any, tokenizer: Any, path: str | Path, block_len: int, *, max_blocks: int = 0,
                    batch_size: int = 2) -> Perplexity:
    """`perplexity` of a UTF-8 text file cut into `block_len`-token blocks."""
    blocks = text_blocks(Path(path).read_text(encoding="utf-8"), tokenizer, block_len, max_blocks)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return perplexity(model, blocks, batch_size, int(pad or 0))
