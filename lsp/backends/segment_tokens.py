"""Tokenizing a prompt's segments again on every keystroke, without tokenizing the unchanged text again.

Typing only changes the end of the prompt, yet tokenizing all of it (a few thousand characters) cost
1–4 ms a request in the server. BPE tokenizers split text into pre-tokens first and never merge across
them, and their pre-tokenizers (GPT-2, Llama 3, Qwen 2, StarCoder, SmolLM…) put a boundary at each line's
indentation: just before the last whitespace character in front of its first visible one ("\\n   " | " def").
A segment is therefore tokenized piece by piece between those *cuts*, and the pieces the previous version
of the segment shares are reused. Whether the loaded model's tokenizer really splits there is checked
against whole-text tokenization for the first segments; one mismatch (SentencePiece vocabularies, which
prefix each text with a space, or an exotic pre-tokenizer) turns the reuse off for that model.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass

Tokenize = Callable[[str], list[int]]

# An indented line's last indentation character, before a visible one that is not a digit (digits are
# pre-tokens of their own, without the space). Lines at column 0 are no cut: whether a run of newlines
# before them is one pre-token depends on the pre-tokenizer.
_INDENTED_LINE = re.compile(r"\n[ \t]*([ \t])(?=[^\s\d])")
VERIFIED_SEGMENTS = 8


def cuts(text: str) -> list[int]:
    """Offsets where the pre-tokenizer starts a new pre-token: before the last indentation character of
    each indented line with visible text."""
    return [match.start(1) for match in _INDENTED_LINE.finditer(text)]


@dataclass
class _Tokenized:
    text: str
    tokens: list[int]
    cuts: list[int]  # ascending offsets into `text`
    token_at: list[int]  # index into `tokens` where the piece starting at the matching cut begins


class SegmentTokenizer:
    """Tokenizes segments (by position in the prompt), reusing the previous version of each."""

    def __init__(self, tokenize: Tokenize, verified_segments: int = VERIFIED_SEGMENTS):
        self._tokenize = tokenize
        self._last: dict[int, _Tokenized] = {}
        self._to_verify = verified_segments
        self.reusing = True

    def tokenize(self, position: int, text: str) -> list[int]:
        if not self.reusing:
            return self._tokenize(text)
        last = self._last.get(position)
        if last is not None and last.text == text:
            return last.tokens
        tokenized = self._incremental(text, last)
        if self._to_verify > 0:
            whole = self._tokenize(text)
            if whole != tokenized.tokens:
                self.reusing = False
                self._last.clear()
                return whole
            self._to_verify -= 1
        self._last[position] = tokenized
        return tokenized.tokens

    def _incremental(self, text: str, last: _Tokenized | None) -> _Tokenized:
        text_cuts = cuts(text)
        reused = -1
        if last is not None:
            shared = _common_prefix_length(text, last.text)
            # A cut depends on the whitespace and the visible character after it: those must be shared.
            reused = bisect.bisect_right(last.cuts, shared - 2) - 1
        if reused >= 0:  # the cuts before it, and it, are the same in both texts
            tokens = last.tokens[: last.token_at[reused]]
            token_at = last.token_at[:reused]
            first = reused
        else:
            tokens = self._tokenize(text[: text_cuts[0] if text_cuts else len(text)])
            token_at, first = [], 0
        for index in range(first, len(text_cuts)):
            end = text_cuts[index + 1] if index + 1 < len(text_cuts) else len(text)
            token_at.append(len(tokens))
            tokens.extend(self._tokenize(text[text_cuts[index] : end]))
        return _Tokenized(text, tokens, text_cuts, token_at)


def _common_prefix_length(a: str, b: str) -> int:
    limit = min(len(a), len(b))
    if a[:limit] == b[:limit]:
        return limit
    low, high = 0, limit  # a[:low] == b[:low], a[:high] != b[:high]
    while high - low > 1:
        middle = (low + high) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle
    return low
