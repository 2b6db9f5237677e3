"""Resolving 'Make idiomatic (model)': run the model on the target and judge its answer.

The server passes a progress callback and a cancel event (set by `$/cancelRequest` or by the user
cancelling the progress); the answer becomes an edit only when `model_rewrite.judge` accepts it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass

from lsp.actions import model_rewrite
from lsp.actions.service import IdiomService
from lsp.backends.base import GenerationParams
from lsp.completion.engine import CompletionEngine, relative_path
from lsp.documents import Document
from lsp.idioms.base import Edit


@dataclass(frozen=True)
class ModelRewriteOutcome:
    edits: tuple[Edit, ...]
    message: str  # why there is no edit, or a one-line summary of the accepted one
    generated: str = ""


async def run_model_rewrite(
    engine: CompletionEngine,
    service: IdiomService,
    doc: Document,
    start: int,
    end: int,
    report: Callable[[str], None],
    cancel: threading.Event,
) -> ModelRewriteOutcome:
    if engine.backend is None:
        return ModelRewriteOutcome((), "no model is loaded")
    target = model_rewrite.find_target(doc.tree, doc.source, start, end)
    if target is None:
        return ModelRewriteOutcome((), "put the cursor in a function or select the code to rewrite")
    version, source, tree = doc.version, doc.source, doc.tree.copy()
    hints = service.hints(doc, target.start, target.end)
    prompt = model_rewrite.build_prompt(tree, source, target, relative_path(doc.uri, engine.root), hints)
    settings = service.settings
    code_tokens = engine.count_tokens(target.code)
    params = GenerationParams(
        max_tokens=min(settings.model_max_tokens, 2 * code_tokens + 64),
        temperature=0.0,
        time_budget_ms=int(settings.model_timeout_s * 1000),
    )
    report(f"rewriting {target.label} ({code_tokens} tokens)")
    col0_comments_end = not model_rewrite.has_col0_comment(target.code)
    result = await engine.generate_text(
        prompt, params, lambda text: model_rewrite.answer_complete(text, col0_comments_end), cancel
    )
    if result.stop_reason == "cancelled" or cancel.is_set():
        return ModelRewriteOutcome((), "cancelled", result.text)
    if doc.version != version:
        return ModelRewriteOutcome((), "the document changed while the model was working; try again", result.text)
    report("checking the rewrite")
    answer = model_rewrite.extract_answer(result.text, col0_comments_end)
    verdict = await asyncio.to_thread(
        model_rewrite.judge, tree, source, target, answer, service.rules, service.checker
    )
    if not verdict.ok:
        return ModelRewriteOutcome((), verdict.message, result.text)
    return ModelRewriteOutcome(verdict.edits, f"rewrote {target.label}", result.text)
