"""Checks that an exported GGUF computes what the torch model computes.

Logits: the same token ids go through torch and through llama.cpp (so tokenization is checked apart, for
files whose tokenizer we wrote); per position, top-1 agreement and the largest absolute difference.
Perplexity: llama.cpp's next-token loss on held-out Elixir, compared between the F16 file and its
quantizations (the ratio says what quantization cost).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

MIN_TOP1_AGREEMENT = 0.99
Q4_K_M_PERPLEXITY_TARGET = 1.05

# Project-written Elixir, not from any training source: the fixed prompts of the logit check.
FIXED_PROMPTS: tuple[str, ...] = (
    'defmodule Inventory.Stock do\n  @moduledoc "Counts items per warehouse."\n\n'
    "  def total(stock) do\n    stock\n    |> Map.values()\n    |> Enum.sum()\n  end\n\n"
    "  def restock(stock, item, amount) when amount > 0 do\n    Map.update(stock, item, amount, &(&1 + amount))\n  end\nend\n",
    "defmodule Text.Words do\n  def frequencies(text) do\n    text\n    |> String.downcase()\n"
    '    |> String.split(~r/\\W+/, trim: true)\n    |> Enum.frequencies()\n    |> Enum.sort_by(fn {_word, count} -> -count end)\n  end\nend\n',
    "defmodule Queue.Worker do\n  use GenServer\n\n  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)\n\n"
    "  @impl true\n  def init(opts), do: {:ok, %{jobs: :queue.new(), limit: Keyword.get(opts, :limit, 10)}}\n\n"
    "  @impl true\n  def handle_cast({:push, job}, state) do\n    {:noreply, %{state | jobs: :queue.in(job, state.jobs)}}\n  end\nend\n",
    "defmodule Parser.Csv do\n  def parse_line(line) do\n    case String.split(line, \",\") do\n"
    '      [name, age] -> {:ok, %{name: String.trim(name), age: String.to_integer(String.trim(age))}}\n'
    "      _other -> {:error, {:bad_line, line}}\n    end\n  end\n\n  def parse(lines) do\n"
    "    with {:ok, rows} <- collect(Enum.map(lines, &parse_line/1)) do\n      {:ok, Enum.reverse(rows)}\n    end\n  end\nend\n",
)


class VerificationError(RuntimeError):
    """An exported file that fails its check; the message carries the numbers."""


@dataclass(frozen=True)
class LogitAgreement:
    positions: int
    top1_agreement: float
    max_abs_diff: float
    mean_abs_diff: float
    threshold: float = MIN_TOP1_AGREEMENT

    @property
    def passed(self) -> bool:
        return self.top1_agreement >= self.threshold

    def as_dict(self, gate: bool = True) -> dict[str, Any]:
        """The numbers; with `gate`, also the threshold and whether they pass it."""
        numbers = asdict(self)
        if not gate:
            numbers.pop("threshold")
            return numbers
        return {**numbers, "passed": self.passed}


def encode_prompts(tokenizer: Any, prompts: Sequence[str], max_tokens: int = 512) -> list[list[int]]:
    """Token ids of each prompt as the model was trained on them (no special tokens added)."""
    return [list(tokenizer(text, add_special_tokens=False)["input_ids"])[:max_tokens] for text in prompts]


@torch.no_grad()
def torch_logits(model: torch.nn.Module, token_ids: Sequence[Sequence[int]]) -> list[np.ndarray]:
    """Float32 logits per position, one prompt at a time (no padding to get in the way)."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for ids in token_ids:
        logits = model(input_ids=torch.tensor([list(ids)], device=device), use_cache=False).logits[0]
        out.append(logits.float().cpu().numpy())
    return out


def _quiet_llama_cpp() -> None:
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)


def open_gguf(path: Path, *, lora_path: Path | None = None, n_ctx: int = 1024, threads: int | None = None) -> Any:
    """A llama.cpp model that keeps every position's logits."""
    import llama_cpp

    _quiet_llama_cpp()
    return llama_cpp.Llama(
        model_path=str(path), lora_path=str(lora_path) if lora_path else None, n_ctx=n_ctx, n_batch=n_ctx,
        n_ubatch=n_ctx, logits_all=True, n_threads=threads, n_threads_batch=threads, verbose=False,
    )


def gguf_logits(llm: Any, token_ids: Sequence[Sequence[int]]) -> list[np.ndarray]:
    out = []
    for ids in token_ids:
        llm.reset()
        llm.eval(list(ids))
        out.append(np.array(llm.scores[: len(ids)], dtype=np.float32))
    return out


def compare_logits(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray]) -> LogitAgreement:
    agree = positions = 0
    max_diff = 0.0
    total_diff = 0.0
    for ref, got in zip(reference, candidate, strict=True):
        if ref.shape != got.shape:
            raise VerificationError(f"logit shapes differ: torch {ref.shape}, GGUF {got.shape}")
        agree += int((ref.argmax(-1) == got.argmax(-1)).sum())
        positions += ref.shape[0]
        diff = np.abs(ref - got)
        max_diff = max(max_diff, float(diff.max()))
        total_diff += float(diff.mean()) * ref.shape[0]
    return LogitAgreement(positions, agree / max(positions, 1), max_diff, total_diff / max(positions, 1))


def tokenization_mismatches(llm: Any, tokenizer: Any, texts: Sequence[str]) -> list[str]:
    """Texts that llama.cpp tokenizes differently from the Hugging Face tokenizer (a wrong pre-tokenizer)."""
    bad = []
    for text in texts:
        ours = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        theirs = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        if list(ours) != theirs:
            bad.append(text[:40])
    return bad


def perplexity(llm: Any, token_ids: Sequence[Sequence[int]]) -> float:
    """exp(mean next-token loss) over all windows, from llama.cpp's logits."""
    nll = 0.0
    count = 0
    for ids in token_ids:
        if len(ids) < 2:
            continue
        logits = gguf_logits(llm, [ids])[0][:-1].astype(np.float64)
        shifted = logits - logits.max(-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        targets = np.asarray(ids[1:])
        nll -= float(log_probs[np.arange(len(targets)), targets].sum())
        count += len(targets)
    if not count:
        raise VerificationError("no held-out text to measure perplexity on")
    return math.exp(nll / count)


def windows(tokenizer: Any, texts: Sequence[str], size: int) -> list[list[int]]:
    """Held-out texts as token windows of at most `size`, each text on its own."""
    out = []
    for ids in encode_prompts(tokenizer, texts, max_tokens=1 << 30):
        out.extend(ids[start : start + size] for start in range(0, len(ids), size) if len(ids[start : start + size]) > 1)
    return out
