"""Exact and near deduplication, streaming: each record is judged against the records kept before it.

The first record seen of a group of duplicates is the one kept, so the result is deterministic for a
given input order; the builder orders its input (e.g. by source priority, then path) to make "first" mean
"best". Both deduplicators keep only compact state per kept record (a 16-byte digest; a uint32 MinHash
signature plus the LSH bands), which is what makes ~100k records fit comfortably in memory.

- Exact: a BLAKE2 digest of the text with whitespace runs collapsed, so re-indented or CRLF copies of a
  file are the same file.
- Near: MinHash over shingles of code tokens (identifiers, numbers, operators; comments and string
  contents included, because copies of a file keep them), indexed with datasketch's MinHashLSH; a
  candidate the index returns is confirmed by its estimated Jaccard similarity, so LSH false positives do
  not drop records.

Signatures are computed here with numpy rather than by datasketch's per-item hashing (which costs a SHA-1
call per shingle, ~10x slower): tokens hash with CRC-32, shingles with a polynomial over their tokens,
and each permutation is a multiply-shift hash. All of it is deterministic across processes, so the
builder may compute signatures in its workers (`minhash_signature`) and dedupe in one place.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from datasketch import LeanMinHash, MinHashLSH

from finetune.dataset.clean import Drop, where_of
from finetune.records import Record

_WHITESPACE = re.compile(r"\s+")
# Identifiers (with Elixir's ?/! suffixes), numbers, then any single non-space character (operators).
_CODE_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*[?!]?|\d[\d_.]*|\S")


def normalise_whitespace(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def content_digest(text: str) -> bytes:
    """The exact-dedupe key: 16 bytes of BLAKE2b over the whitespace-normalised text."""
    return hashlib.blake2b(normalise_whitespace(text).encode("utf-8"), digest_size=16).digest()


def code_tokens(text: str) -> list[str]:
    return _CODE_TOKEN.findall(text)


# Odd 64-bit multiplier of the shingle polynomial.
_SHINGLE_BASE = np.uint64(0x9E3779B97F4A7C15)
# Shingles hashed per block when computing a signature: bounds memory at num_perm x block x 8 bytes.
_BLOCK = 4096


def _token_hashes(tokens: list[str]) -> np.ndarray:
    cache: dict[str, int] = {}
    for token in tokens:
        if token not in cache:
            cache[token] = zlib.crc32(token.encode("utf-8"))
    return np.fromiter((cache[token] for token in tokens), dtype=np.uint64, count=len(tokens))


def shingle_hashes(tokens: list[str], size: int) -> np.ndarray:
    """64-bit hashes of the distinct runs of `size` consecutive tokens (a shorter text: one run of all)."""
    if not tokens:
        return np.empty(0, dtype=np.uint64)
    hashes = _token_hashes(tokens)
    width = min(size, len(hashes))
    count = len(hashes) - width + 1
    combined = np.zeros(count, dtype=np.uint64)
    for offset in range(width):  # uint64 arithmetic wraps, which is the modulus we want
        combined = combined * _SHINGLE_BASE + hashes[offset : offset + count]
    return np.unique(combined)


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Multiply-shift hash parameters: odd multipliers and offsets, 64-bit, from a seeded generator."""
    generator = np.random.default_rng(seed)
    multipliers = generator.integers(0, 2**64, size=num_perm, dtype=np.uint64, endpoint=False) | np.uint64(1)
    offsets = generator.integers(0, 2**64, size=num_perm, dtype=np.uint64, endpoint=False)
    return multipliers, offsets


def minhash_signature(hashes: np.ndarray, perms: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The uint32 MinHash signature of a set of 64-bit shingle hashes: per permutation, the minimum."""
    multipliers, offsets = perms
    signature = np.full(len(multipliers), np.iinfo(np.uint32).max, dtype=np.uint64)
    for start in range(0, len(hashes), _BLOCK):
        block = hashes[start : start + _BLOCK]
        # (a·x + b) mod 2^64, top 32 bits: a universal family from 64-bit keys to 32-bit values.
        permuted = (multipliers[:, None] * block[None, :] + offsets[:, None]) >> np.uint64(32)
        np.minimum(signature, permuted.min(axis=1), out=signature)
    return signature.astype(np.uint32)


@dataclass
class DedupeStats:
    seen: int = 0
    kept: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0


class ExactDeduper:
    """Drops a record whose whitespace-normalised text was seen before."""

    def __init__(self) -> None:
        self._first: dict[bytes, str] = {}
        self.stats = DedupeStats()

    def __call__(self, record: Record, digest: bytes | None = None) -> Record | Drop:
        """Keep or drop `record`; pass `digest` (`content_digest(text)`) when computed in a worker."""
        self.stats.seen += 1
        digest = digest if digest is not None else content_digest(record.text)
        original = self._first.get(digest)
        if original is not None:
            self.stats.exact_duplicates += 1
            return Drop("dedupe", "exact-duplicate", where_of(record), f"same as {original}")
        self._first[digest] = where_of(record)
        self.stats.kept += 1
        return record


@dataclass(frozen=True)
class NearDedupeConfig:
    # Estimated Jaccard similarity of shingle sets at or above which two records are near duplicates.
    threshold: float = 0.85
    # MinHash permutations: 128 estimates Jaccard within about ±0.09 (two standard errors) per pair.
    num_perm: int = 128
    # Tokens per shingle: 5 code tokens is about one short expression.
    shingle_size: int = 5
    # Texts with fewer distinct shingles than this are too small to judge by sampling; they are kept.
    min_shingles: int = 5
    seed: int = 1


class NearDeduper:
    """Drops a record whose shingle set is near-identical to a kept record's (MinHash LSH)."""

    def __init__(self, config: NearDedupeConfig = NearDedupeConfig()) -> None:
        self.config = config
        self.stats = DedupeStats()
        self._lsh = MinHashLSH(threshold=config.threshold, num_perm=config.num_perm)
        self._permutations = permutations(config.num_perm, config.seed)
        self._signatures: list[np.ndarray] = []
        self._wheres: list[str] = []

    def signature(self, text: str) -> np.ndarray | None:
        """The text's MinHash signature, or None for texts too small to judge. Pure: safe in workers."""
        hashes = shingle_hashes(code_tokens(text), self.config.shingle_size)
        if len(hashes) < self.config.min_shingles:
            return None
        return minhash_signature(hashes, self._permutations)

    def _as_minhash(self, signature: np.ndarray) -> LeanMinHash:
        # The LSH index only bands the hash values; the scheme label satisfies its consistency check.
        return LeanMinHash(seed=self.config.seed, hashvalues=signature, scheme="affine32")

    def most_similar(self, signature: np.ndarray) -> tuple[int, float] | None:
        """The most similar kept record (index, estimated Jaccard) at or above the threshold, if any."""
        best: tuple[int, float] | None = None
        for key in self._lsh.query(self._as_minhash(signature)):
            similarity = float(np.mean(self._signatures[key] == signature))
            if similarity >= self.config.threshold and (best is None or similarity > best[1]):
                best = (key, similarity)
        return best

    def __call__(self, record: Record, signature: np.ndarray | None = None) -> Record | Drop:
        """Keep or drop `record`; pass `signature` when it was computed elsewhere (e.g. in a worker)."""
        self.stats.seen += 1
        if signature is None:
            signature = self.signature(record.text)
        if signature is None:
            self.stats.kept += 1
            return record
        match = self.most_similar(signature)
        if match is not None:
            key, similarity = match
            self.stats.near_duplicates += 1
            detail = f"~{similarity:.2f} Jaccard with {self._wheres[key]}"
            return Drop("dedupe", "near-duplicate", where_of(record), detail)
        key = len(self._signatures)
        self._signatures.append(signature)
        self._wheres.append(where_of(record))
        self._lsh.insert(key, self._as_minhash(signature), check_duplication=False)
        self.stats.kept += 1
        return record


class Deduper:
    """Exact, then near dedupe, in one pass; `stats` counts both kinds of duplicate."""

    def __init__(self, near: NearDedupeConfig | None = NearDedupeConfig()) -> None:
        self.exact = ExactDeduper()
        self.near = NearDeduper(near) if near is not None else None

    @property
    def stats(self) -> DedupeStats:
        return DedupeStats(
            seen=self.exact.stats.seen,
            kept=self.near.stats.kept if self.near else self.exact.stats.kept,
            exact_duplicates=self.exact.stats.exact_duplicates,
            near_duplicates=self.near.stats.near_duplicates if self.near else 0,
        )

    def __call__(
        self, record: Record, signature: np.ndarray | None = None, digest: bytes | None = None
    ) -> Record | Drop:
        """Keep or drop `record`; `signature` and `digest` as for the two dedupers, when computed in a worker."""
        result = self.exact(record, digest)
        if isinstance(result, Drop) or self.near is None:
            return result
        return self.near(result, signature)


def dedupe(
    records: Iterable[Record], near: NearDedupeConfig | None = NearDedupeConfig()
) -> Iterator[Record | Drop]:
    """Each record, or the Drop that replaced it, in input order."""
    deduper = Deduper(near)
    for record in records:
        yield deduper(record)
