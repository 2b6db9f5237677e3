"""The embedded backend: a GGUF model in-process through llama-cpp-python.

The prompt's unchanged lines keep their tokens (`segment_tokens`). Prompt evaluation is done here in
small chunks (so a superseded request stops within one chunk) and reuses the KV cache for the longest
common token prefix with the previous prompt; generation then samples and decodes one token at a time
through llama.cpp's C API.

A LoRA adapter (a registry version of kind "adapter") is applied at run time on top of the base GGUF.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from lsp.backends.base import (
    BackendError,
    BackendInfo,
    GenerationParams,
    GenerationResult,
    StopCheck,
    generation_starts,
)
from lsp.backends.segment_tokens import SegmentTokenizer
from lsp.prompt import PROMPT_FORMAT_METADATA_KEY, FimTokens, Prompt

# Small enough that cancellation is quick, large enough to keep prompt throughput.
EVAL_CHUNK_TOKENS = 128


_log_lines: list[str] = []
# Created once and never freed: llama.cpp may still call a callback just after it was swapped out.
_capture_callback: object | None = None


@contextlib.contextmanager
def _captured_llama_log(lib: ModuleType) -> Iterator[list[str]]:
    """llama.cpp's log lines while inside: it says *why* it rejects an adapter only there (at a level
    llama-cpp-python does not print), and the reason belongs in the message the user sees."""
    global _capture_callback
    try:
        from llama_cpp._logger import llama_log_callback as default_callback
    except ImportError:  # pragma: no cover - another llama-cpp-python layout: no capture
        yield []
        return
    if _capture_callback is None:

        @lib.llama_log_callback
        def capture(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            _log_lines.append(text.decode("utf-8", errors="replace").strip())

        _capture_callback = capture
    _log_lines.clear()
    lib.llama_log_set(_capture_callback, ctypes.c_void_p(0))
    try:
        yield _log_lines
    finally:
        lib.llama_log_set(default_callback, ctypes.c_void_p(0))


def _failure_reason(lines: list[str]) -> str:
    """`…: failed to apply lora adapter: tensor 'x' has incorrect shape (…)` → the part after the colon."""
    for line in reversed(lines):
        if "fail" in line or "error" in line:
            return line.split(": ", 1)[-1]
    return ""


def _common_prefix(cached: list[int], tokens: list[int]) -> int:
    count = 0
    for a, b in zip(cached, tokens, strict=False):
        if a != b:
            break
        count += 1
    return count


class LlamaCppBackend:
    def __init__(self, model_path: Path, n_ctx: int = 4096, threads: int = 0, lora_path: Path | None = None):
        try:
            import llama_cpp
        except ImportError as exc:  # pragma: no cover - a broken install
            raise BackendError(f"llama-cpp-python is not installed: {exc}") from exc
        self._llama_cpp = llama_cpp
        threads = threads or max(1, os.cpu_count() or 1)
        try:
            # verbose=False briefly points fds 1 and 2 at /dev/null while loading; the server therefore
            # speaks LSP on a duplicate of stdout (see lsp.__main__), which this does not touch.
            self._llm = llama_cpp.Llama(
                model_path=str(model_path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                n_batch=512,
                verbose=False,
            )
        except Exception as exc:  # llama.cpp reports bad files as ValueError/RuntimeError
            raise BackendError(f"cannot load model {model_path}: {exc}") from exc
        metadata = dict(self._llm.metadata)
        if metadata.get("general.type") == "adapter":
            self.close()
            raise BackendError(f"{model_path} is a LoRA adapter, not a model; set it as an adapter instead")
        self._path = model_path
        self._metadata = metadata
        self._lora_path = lora_path
        if lora_path is not None:
            self._apply_lora(lora_path)
        self._vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        self._fim = self._find_fim_tokens()
        self._lock = threading.Lock()
        # Generation decodes one token at a time through these, reused across calls: the C API directly
        # rather than `Llama.generate`, whose per-token Python bookkeeping costs ~0.16 ms a token here.
        self._greedy = llama_cpp.llama_sampler_init_greedy()
        # Typing changes the end of the prompt only: its unchanged lines keep their tokens.
        self._segments = SegmentTokenizer(self._tokenize_text)
        self._one = llama_cpp.llama_batch_init(1, 0, 1)

    def _apply_lora(self, lora_path: Path) -> None:
        """Load the adapter onto this model and context (what `Llama(lora_path=...)` does, keeping mmap).

        `Llama(lora_path=...)` turns mmap off, so every base + adapter load would hold a private copy of
        the base weights (+122 MB for the 98 MB embedded base); llama.cpp applies adapters at run time, so
        the base can stay a shared read-only mapping. The model frees its adapters when it is freed.
        """
        lib = self._llama_cpp
        with _captured_llama_log(lib) as log:
            adapter = lib.llama_adapter_lora_init(self._llm.model, str(lora_path).encode("utf-8"))
            reason = _failure_reason(log)
        if not adapter:
            self.close()
            reason = reason or "not a LoRA GGUF, or its tensors do not fit this base"
            raise BackendError(
                f"llama.cpp rejected the LoRA adapter {lora_path} for base {self._path}: {reason}"
            )
        adapters = (lib.llama_adapter_lora_p_ctypes * 1)(adapter)
        scales = (ctypes.c_float * 1)(1.0)
        if lib.llama_set_adapters_lora(self._llm._ctx.ctx, adapters, 1, scales):
            self.close()
            raise BackendError(f"llama.cpp could not apply the LoRA adapter {lora_path} to {self._path}")
        # The adapter's own name and prompt format describe what is served (the base's do not).
        for key in ("general.name", PROMPT_FORMAT_METADATA_KEY):
            buffer = ctypes.create_string_buffer(1024)
            if lib.llama_adapter_meta_val_str(adapter, key.encode(), buffer, len(buffer)) > 0:
                self._metadata[key] = buffer.value.decode("utf-8", errors="replace")

    # -- facts ------------------------------------------------------------------------------------------
    def _token_text(self, token: int) -> str:
        return self._llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    def _find_fim_tokens(self) -> FimTokens | None:
        lib = self._llama_cpp
        ids = (
            lib.llama_vocab_fim_pre(self._vocab),
            lib.llama_vocab_fim_suf(self._vocab),
            lib.llama_vocab_fim_mid(self._vocab),
        )
        if any(token < 0 for token in ids):
            return None
        return FimTokens(*(self._token_text(token) for token in ids))

    def info(self) -> BackendInfo:
        return BackendInfo(
            backend="llama_cpp",
            model=self._metadata.get("general.name") or self._path.name,
            fim=self._fim,
            n_ctx=self._llm.n_ctx(),
            prompt_format=self._metadata.get(PROMPT_FORMAT_METADATA_KEY),
        )

    @property
    def model_path(self) -> Path:
        return self._path

    @property
    def lora_path(self) -> Path | None:
        return self._lora_path

    def count_tokens(self, text: str) -> int:
        return len(self._tokenize_text(text))

    def _tokenize_text(self, text: str) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    # -- prompt -----------------------------------------------------------------------------------------
    def tokenize_prompt(self, prompt: Prompt) -> list[int]:
        tokens: list[int] = []
        if self._llm._model.add_bos_token():
            tokens.append(self._llm.token_bos())
        for position, segment in enumerate(prompt.segments):
            if segment.special:
                tokens.extend(self._llm.tokenize(segment.text.encode("utf-8"), add_bos=False, special=True))
            elif segment.text:
                tokens.extend(self._segments.tokenize(position, segment.text))
        # Keep room for generation; dropping the oldest context only happens with tiny n_ctx settings.
        limit = self._llm.n_ctx() - 128
        return tokens[-limit:] if len(tokens) > limit else tokens

    def _evaluate(self, tokens: list[int], cancel: threading.Event) -> tuple[int, int] | None:
        """Bring the KV cache to `tokens`, the last one included; returns (reused, evaluated) or None when
        cancelled. Generation samples first from the last token's logits, which llama.cpp keeps only for
        the last decode: they are reused when that decode ended the prompt (a prefill at a rest, or the
        same request again), else at least the last token is evaluated."""
        llm = self._llm
        common = _common_prefix(llm._input_ids.tolist(), tokens)
        if common == len(tokens) == llm.n_tokens and not llm._requires_eval:
            return common, 0
        reused = min(common, len(tokens) - 1)
        if reused < llm.n_tokens:
            llm._ctx.kv_cache_seq_rm(-1, reused, -1)
            llm.n_tokens = reused
            llm._requires_eval = True  # the logits held are some other position's
        pending = tokens[reused:]
        for start in range(0, len(pending), EVAL_CHUNK_TOKENS):
            if cancel.is_set():
                return None
            llm.eval(pending[start : start + EVAL_CHUNK_TOKENS])
        return reused, len(pending)

    def prefill(self, prompt: Prompt, cancel: threading.Event) -> GenerationResult:
        with self._lock:
            started = time.perf_counter()
            tokens = self.tokenize_prompt(prompt)
            outcome = self._evaluate(tokens, cancel)
            reused, evaluated = outcome if outcome else (0, 0)
            return GenerationResult(
                text="",
                prompt_tokens=len(tokens),
                reused_tokens=reused,
                evaluated_tokens=evaluated,
                prompt_ms=(time.perf_counter() - started) * 1000,
                stop_reason="cancelled" if outcome is None else "prefill",
            )

    # -- generation -------------------------------------------------------------------------------------
    def generate(
        self, prompt: Prompt, params: GenerationParams, should_stop: StopCheck, cancel: threading.Event
    ) -> GenerationResult:
        with self._lock:
            return self._generate(prompt, params, should_stop, cancel)

    def _generate(
        self, prompt: Prompt, params: GenerationParams, should_stop: StopCheck, cancel: threading.Event
    ) -> GenerationResult:
        llm = self._llm
        started = time.perf_counter()
        tokens = self.tokenize_prompt(prompt)
        # Tokenizing holds the GIL (mostly Python now that unchanged lines are reused); evaluation does not.
        generation_starts(should_stop)
        result = GenerationResult(text="", prompt_tokens=len(tokens), stop_reason="max_tokens")
        outcome = self._evaluate(tokens, cancel)
        if outcome is None:
            result.stop_reason = "cancelled"
            result.prompt_ms = (time.perf_counter() - started) * 1000
            return result
        result.reused_tokens, result.evaluated_tokens = outcome
        prompt_done: float | None = None
        generated: list[int] = []
        text_bytes = b""
        max_tokens = min(params.max_tokens, llm.n_ctx() - len(tokens) - 1)
        lib, ctx = self._llama_cpp, llm._ctx.ctx
        sampler = self._greedy if params.temperature == 0 else self._new_sampler(params.temperature)
        try:
            while True:
                # `_evaluate` (then each `_decode_one`) left the logits of the last token in the context.
                token = lib.llama_sampler_sample(sampler, ctx, -1)
                now = time.perf_counter()
                if prompt_done is None:
                    prompt_done = now
                if lib.llama_vocab_is_eog(self._vocab, token):
                    result.stop_reason = "eos"
                    break
                generated.append(token)
                text_bytes += llm.detokenize([token])
                # A token can end mid-character; the rest arrives with the next one.
                result.text = text_bytes.decode("utf-8", errors="ignore")
                if cancel.is_set():
                    result.stop_reason = "cancelled"
                    break
                if should_stop(result.text):
                    result.stop_reason = "stop"
                    break
                if len(generated) >= max_tokens:
                    result.stop_reason = "max_tokens"
                    break
                if params.time_budget_ms and (now - prompt_done) * 1000 > params.time_budget_ms:
                    result.stop_reason = "time"
                    break
                self._decode_one(token)
        finally:
            if sampler is not self._greedy:
                lib.llama_sampler_free(sampler)
        end = time.perf_counter()
        prompt_done = prompt_done or end
        result.generated_tokens = len(generated)
        result.prompt_ms = (prompt_done - started) * 1000
        result.generation_ms = (end - prompt_done) * 1000
        return result

    def _new_sampler(self, temperature: float):
        """What `Llama.generate` samples with at this temperature (its defaults: top-k 40, top-p 0.95,
        min-p 0.05), seeded at random; the caller frees it."""
        lib = self._llama_cpp
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        for stage in (
            lib.llama_sampler_init_top_k(40),
            lib.llama_sampler_init_top_p(0.95, 1),
            lib.llama_sampler_init_min_p(0.05, 1),
            lib.llama_sampler_init_temp(temperature),
            lib.llama_sampler_init_dist(lib.LLAMA_DEFAULT_SEED),
        ):
            lib.llama_sampler_chain_add(chain, stage)
        return chain

    def _decode_one(self, token: int) -> None:
        """Append `token` to the KV cache and keep `Llama`'s record of it (what `_evaluate` compares with)."""
        llm, batch = self._llm, self._one
        position = llm.n_tokens
        batch.n_tokens = 1
        batch.token[0] = token
        batch.pos[0] = position
        batch.n_seq_id[0] = 1
        batch.seq_id[0][0] = 0
        batch.logits[0] = True
        status = self._llama_cpp.llama_decode(llm._ctx.ctx, batch)
        if status != 0:
            llm._requires_eval = True
            raise BackendError(f"llama.cpp could not decode a token (llama_decode returned {status})")
        llm.input_ids[position] = token
        llm.n_tokens = position + 1
        llm._requires_eval = False

    def close(self) -> None:
        # Also called by __init__ on a failed load, before these exist.
        if getattr(self, "_greedy", None) is not None:
            self._llama_cpp.llama_sampler_free(self._greedy)
            self._greedy = None
        if getattr(self, "_one", None) is not None:
            self._llama_cpp.llama_batch_free(self._one)
            self._one = None
        llm = getattr(self, "_llm", None)
        if llm is not None:
            llm.close()
