"""Task generation for stages 1 and 2: every sample is a plain dict rendered through `lsp.prompt`.

Row shape: {"stage", "task", "prompt", "completion", "text", "prompt_format", "provenance", "meta"}.
Stage 1 rows have prompt "" and the document in `text`; stage 2 rows have `text` = prompt + completion.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from finetune.dataset.tasks.causal import causal_samples
from finetune.dataset.tasks.common import DEFAULT_FIM_TOKENS, make_sample
from finetune.dataset.tasks.fim import FimOptions, fim_samples
from finetune.dataset.tasks.idiomatic import idiomatic_samples
from finetune.dataset.tasks.implement import ImplementOptions, implement_samples
from finetune.dataset.tasks.tests_for import pair_with_tests, write_test_samples, write_test_samples_for
from finetune.records import Record

__all__ = [
    "DEFAULT_FIM_TOKENS",
    "FimOptions",
    "ImplementOptions",
    "Stage2Options",
    "causal_samples",
    "fim_samples",
    "idiomatic_samples",
    "implement_samples",
    "make_sample",
    "pair_with_tests",
    "stage2_samples",
    "write_test_samples",
    "write_test_samples_for",
]


@dataclass(frozen=True)
class Stage2Options:
    fim: FimOptions = field(default_factory=FimOptions)
    implement: ImplementOptions = field(default_factory=ImplementOptions)
    idiomatic: bool = True
    max_inverse_per_file: int = 4


def stage2_samples(record: Record, options: Stage2Options | None = None) -> Iterator[dict[str, Any]]:
    """The per-file stage-2 tasks (FIM, implement from @doc/@spec, make idiomatic) for one record.

    "Write the test for" needs a library file and its test file together: `write_test_samples_for`.
    """
    options = options or Stage2Options()
    yield from fim_samples(record, options.fim)
    yield from implement_samples(record, options.implement)
    if options.idiomatic:
        yield from idiomatic_samples(record, max_inverse_per_file=options.max_inverse_per_file)
