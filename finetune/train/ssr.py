"""Self-synthesized rehearsal (SSR): rehearse earlier stages' tasks without keeping their data.

For each task of the earlier stages (Huang et al., ACL 2024):
  1. a few real examples are the demonstrations;
  2. the *base* model (adapter disabled) samples new inputs and outputs from k-shot prompts;
  3. the *latest* adapter re-answers each synthesised input greedily — the rehearsal target is what the
     current model already does on that task, not what the base guessed;
  4. a diverse, representative subset is kept: k-means over hashed bag-of-token vectors (offline, no
     sentence-embedding model), clusters filled in proportion to their size, nearest to the centroid first;
  5. those pairs are mixed into the next stage's data.

Generation is passed in as a function, so the selection logic is testable without a model and the same
code serves both backends.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lsp.prompt import PROMPT_FORMAT_VERSION

# (prompt, do_sample) → generated continuation.
Generate = Callable[[str, bool], str]
INPUT, OUTPUT = "Input:", "Output:"
EMBEDDING_DIM = 256


@dataclass(frozen=True)
class SsrOptions:
    examples_per_task: int = 4
    shots: int = 2
    synthesized: int = 16  # candidates sampled per task
    keep: int = 8  # kept per task
    clusters: int = 4
    seed: int = 0


@dataclass(frozen=True)
class Pair:
    input: str
    output: str


def demonstrations(rows: Sequence[dict[str, Any]], options: SsrOptions) -> dict[str, list[Pair]]:
    """A few real (prompt, completion) pairs per task, chosen reproducibly."""
    by_task: dict[str, list[Pair]] = {}
    for row in rows:
        if row.get("prompt") and row.get("completion"):
            by_task.setdefault(str(row["task"]), []).append(Pair(str(row["prompt"]), str(row["completion"])))
    rng = random.Random(options.seed)
    return {task: rng.sample(pairs, min(len(pairs), options.examples_per_task)) for task, pairs in sorted(by_task.items())}


def synthesis_prompts(task: str, demos: Sequence[Pair], shots: int) -> list[str]:
    """k-shot prompts, one per ordered choice of `shots` demonstrations, each ending with `Input:`."""
    prompts = []
    for chosen in itertools.permutations(demos, min(shots, len(demos))):
        shown = "".join(f"{INPUT}\n{d.input.rstrip()}\n{OUTPUT}\n{d.output.rstrip()}\n\n" for d in chosen)
        prompts.append(f"Task: {task}\n\n{shown}{INPUT}\n")
    return prompts


def parse_synthesis(generated: str) -> Pair | None:
    """The first `input … Output: output` of a sampled continuation; None when it is malformed."""
    if OUTPUT not in generated:
        return None
    head, tail = generated.split(OUTPUT, 1)
    output = tail.split(f"\n{INPUT}", 1)[0].strip("\n")
    source = head.strip("\n")
    if not source.strip() or not output.strip():
        return None
    return Pair(source + "\n", output + "\n")


def embed(texts: Sequence[str]) -> np.ndarray:
    """Hashed bag-of-tokens vectors, L2-normalised: a cheap, deterministic stand-in for sentence embeddings."""
    vectors = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float64)
    for row, text in enumerate(texts):
        for token in re.findall(r"\w+|[^\w\s]", text):
            bucket = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=4).digest(), "little")
            vectors[row, bucket % EMBEDDING_DIM] += 1.0
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def kmeans(vectors: np.ndarray, k: int, seed: int, iterations: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """(labels, centroids) of Lloyd's k-means with a seeded k-means++ start."""
    rng = np.random.default_rng(seed)
    k = max(1, min(k, len(vectors)))
    centroids = [vectors[rng.integers(len(vectors))]]
    for _ in range(1, k):
        distances = np.min([np.sum((vectors - c) ** 2, axis=1) for c in centroids], axis=0)
        total = distances.sum()
        choice = rng.choice(len(vectors), p=distances / total) if total > 0 else rng.integers(len(vectors))
        centroids.append(vectors[choice])
    centres = np.array(centroids)
    labels = np.zeros(len(vectors), dtype=int)
    for _ in range(iterations):
        labels = np.argmin(((vectors[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2), axis=1)
        updated = np.array([vectors[labels == j].mean(axis=0) if np.any(labels == j) else centres[j] for j in range(k)])
        if np.allclose(updated, centres):
            break
        centres = updated
    return labels, centres


def select_diverse(pairs: Sequence[Pair], keep: int, clusters: int, seed: int) -> list[Pair]:
    """`keep` pairs spread over the clusters of their inputs, in proportion to cluster sizes, each cluster's
    members nearest its centroid first."""
    unique = list(dict.fromkeys(pairs))
    if len(unique) <= keep:
        return unique
    vectors = embed([p.input for p in unique])
    labels, centres = kmeans(vectors, clusters, seed)
    sizes = np.bincount(labels, minlength=len(centres))
    quota = np.floor(sizes / sizes.sum() * keep).astype(int)
    for j in np.argsort(-sizes)[: keep - quota.sum()]:  # hand out the remainder to the biggest clusters
        quota[j] += 1
    chosen: list[Pair] = []
    for j in range(len(centres)):
        members = np.flatnonzero(labels == j)
        order = members[np.argsort(((vectors[members] - centres[j]) ** 2).sum(axis=1), kind="stable")]
        chosen.extend(unique[i] for i in order[: quota[j]])
    return chosen


def rehearsal_rows(
    rows: Sequence[dict[str, Any]],
    stage: int,
    sample_with_base: Generate,
    answer_with_latest: Generate,
    options: SsrOptions,
    stats: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Synthetic rows for every task of `rows` (earlier stages' data), to mix into stage `stage`.

    `stats`, when given, receives the counts: sampled, parsed, kept."""
    stats = stats if stats is not None else {}
    for key in ("sampled", "parsed", "kept"):
        stats.setdefault(key, 0)
    synthetic: list[dict[str, Any]] = []
    for task, demos in demonstrations(rows, options).items():
        prompts = synthesis_prompts(task, demos, options.shots)
        if not prompts:
            continue
        candidates = []
        for index in range(options.synthesized):
            parsed = parse_synthesis(sample_with_base(prompts[index % len(prompts)], True))
            stats["sampled"] += 1
            if parsed is not None:
                candidates.append(parsed)
        stats["parsed"] += len(candidates)
        # The latest model's own answers are the targets: rehearsal keeps what it knows now.
        refined = [Pair(c.input, answer_with_latest(c.input, False)) for c in candidates]
        for pair in select_diverse([p for p in refined if p.output.strip()], options.keep, options.clusters, options.seed):
            stats["kept"] += 1
            synthetic.append({
                "stage": stage, "task": f"ssr/{task}", "prompt": pair.input, "completion": pair.output, "text": "",
                "prompt_format": PROMPT_FORMAT_VERSION,
                "provenance": {"source": "ssr", "package": task, "version": "", "path": "", "licence": "", "url": ""},
                "meta": {"rehearsal_of": task},
            })
    return synthetic
