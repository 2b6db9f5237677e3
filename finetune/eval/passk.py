"""pass@k: the unbiased estimator of Chen et al. 2021 (arXiv 2107.03374), as in openai/human-eval and
MultiPL-E's pass_k.py, and its mean over problems."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping


def pass_at_k(n: int, c: int, k: int) -> float:
    """P(at least one of k samples drawn from n, of which c are correct, passes) = 1 - C(n-c, k) / C(n, k).

    Computed as the product 1 - Π_{i=n-c+1..n} (1 - k/i): no huge binomials, no float overflow."""
    if n < 0 or c < 0 or k < 1:
        raise ValueError(f"pass@k needs n >= 0, c >= 0, k >= 1 (got n={n}, c={c}, k={k})")
    if k > n:
        raise ValueError(f"pass@k needs k <= n (got n={n}, c={c}, k={k})")
    if c > n:
        raise ValueError(f"pass@k needs c <= n (got n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0  # every k-subset contains a correct sample
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def not_computable(per_problem: Mapping[str, tuple[int, int]], k: int) -> list[str]:
    """Problems with fewer than k samples: pass@k is undefined for them."""
    return sorted(name for name, (n, _c) in per_problem.items() if n < k)


def aggregate(per_problem: Mapping[str, tuple[int, int]], ks: Iterable[int]) -> dict[int, float | None]:
    """Mean pass@k over problems, {name: (n, c)}. None (JSON null) for a k that some problem has fewer
    than k samples for — averaging over the rest would silently change what the number means — and for
    an empty set of problems. `not_computable` names the problems."""
    result: dict[int, float | None] = {}
    for k in ks:
        if per_problem and not not_computable(per_problem, k):
            values = [pass_at_k(n, c, k) for n, c in per_problem.values()]
            result[k] = sum(values) / len(values)
        else:
            result[k] = None
    return result
