"""EWC anchored at the base model: protect its general English before the first stage trains.

EWC between stages only protects what an earlier *stage* learned; stage 1 itself already moves the model
away from the base's own knowledge, and an anchor taken after stage 1 cannot undo that. So on a fresh run
(`ewc.general_text` set, `ewc.enabled`), before anything trains, the diagonal Fisher of the adapter is
estimated on blocks of a general-English text at the fresh adapter and consolidated: θ* is the fresh
adapter, whose lora_B = 0 makes the model exactly the base. A fresh lora_A gets zero Fisher (its gradient
goes through B = 0), so the anchor constrains B, which is what changes the base's function; A stays free
until a stage's own Fisher covers it. Online EWC then continues across stages as usual (F ← γF + F_new).

`ewc.general_text` is "builtin" (the text shipped in finetune/data/general_english/anchor.txt; its sister
eval.txt is kept apart for measuring forgetting), a path to a UTF-8 text file, or "" (off).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from finetune.train.config import RunConfig, general_text_path
from finetune.train.ewc import EWC, FisherOptions, Normalize, fisher_diagonal
from finetune.train.model import adapter_parameters
from finetune.train.perplexity import text_blocks

# Short blocks: ~12 KB of text gives a dozen per-block gradients for the Fisher rather than a handful.
ANCHOR_BLOCK_TOKENS = 256


def _causal_lm_loss(model: Any, batch: torch.Tensor) -> torch.Tensor:
    return model(input_ids=batch, labels=batch, use_cache=False).loss


def anchor_fisher_blocks(tokenizer: Any, path: Path, samples: int, max_seq_len: int) -> list[list[int]]:
    """The first `samples` blocks of the text, each at most ANCHOR_BLOCK_TOKENS (and max_seq_len) long."""
    block_len = max(2, min(ANCHOR_BLOCK_TOKENS, max_seq_len))
    return text_blocks(path.read_text(encoding="utf-8"), tokenizer, block_len, samples)


def consolidate_general_anchor(model: Any, tokenizer: Any, ewc: EWC, path: Path, *, samples: int,
                               max_seq_len: int, normalize: Normalize = "mean") -> int:
    """Estimate the adapter's Fisher on the text at the current weights and consolidate it into `ewc`
    (θ* = the current adapter); returns the number of blocks used."""
    blocks = anchor_fisher_blocks(tokenizer, path, samples, max_seq_len)
    if not blocks:
        raise ValueError(f"{path}: no text to anchor EWC on")
    device = next(model.parameters()).device
    params = adapter_parameters(model)
    batches = [torch.tensor([block], dtype=torch.long, device=device) for block in blocks]
    options = FisherOptions(max_batches=None, normalize=normalize)
    fisher = fisher_diagonal(model, params, batches, _causal_lm_loss, options)
    ewc.consolidate(params, fisher)
    return len(blocks)


def anchor_general_english(model: Any, tokenizer: Any, ewc: EWC, config: RunConfig,
                           say: Callable[[str], None]) -> int:
    """The runner's hook before the first stage of a fresh run: the anchor when `config.ewc` asks for it;
    returns the number of blocks used, 0 when off."""
    path = general_text_path(config.ewc.general_text)
    if not config.ewc.enabled or path is None:
        return 0
    count = consolidate_general_anchor(model, tokenizer, ewc, path, samples=config.ewc.general_samples,
                                       max_seq_len=config.model.max_seq_len, normalize=config.ewc.normalise)
    # The Fisher's "zero for lora_A" warning is expected here: A only gets a Fisher once B has moved.
    say(f"EWC: anchored the base on {count} blocks of general English ({config.ewc.general_text})")
    return count
