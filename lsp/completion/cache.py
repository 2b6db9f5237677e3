"""Typed-ahead completion cache.

A completion offered at some cursor stays valid while the user types along it: if the text before the
new cursor is the old text before the cursor plus a prefix of the completion, the rest of the completion
is the answer, with no model call. Entries are keyed by the text around the cursor, not by positions, so
edits elsewhere in the line or file (which change positions but not that text) do not invalidate them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

# How much text around the cursor identifies a completion's place.
BEFORE_KEY_CHARS = 512
AFTER_KEY_CHARS = 128


@dataclass(frozen=True)
class CacheEntry:
    before: str  # the last BEFORE_KEY_CHARS characters before the cursor when it was computed
    after: str  # the first AFTER_KEY_CHARS after the cursor
    completion: str


class TypedAheadCache:
    def __init__(self, capacity: int = 256):
        self._capacity = capacity
        self._entries: OrderedDict[tuple[str, str], CacheEntry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def put(self, before: str, after: str, completion: str) -> None:
        if not completion:
            return
        entry = CacheEntry(before[-BEFORE_KEY_CHARS:], after[:AFTER_KEY_CHARS], completion)
        key = (entry.before, entry.after)
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def get(self, before: str, after: str) -> str | None:
        """The rest of a cached completion the user has typed along, or None."""
        after_key = after[:AFTER_KEY_CHARS]
        # Newest first: the most recent completion is the one the user is most likely typing along.
        for entry in reversed(self._entries.values()):
            if entry.after != after_key:
                continue
            for typed_len in range(len(entry.completion)):
                if typed_len and not before.endswith(entry.completion[:typed_len]):
                    continue
                old_before = before[: len(before) - typed_len]
                if old_before[-BEFORE_KEY_CHARS:] == entry.before:
                    rest = entry.completion[typed_len:]
                    return rest if rest.strip() else None
        return None
