"""In-process quantization of an F16/BF16 GGUF with llama.cpp's own quantizer (through llama-cpp-python).

No llama.cpp checkout or `llama-quantize` binary: `llama_model_quantize` is in the library the server
already uses. It copies every metadata key, ours included, and sets the new file type. Rows whose width is
not a multiple of 256 (small models such as SmolLM2's 576) cannot take K-quants; llama.cpp then falls back
to a legacy type for those tensors, so Q4_K_M of a tiny model is mostly Q5_0.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

QUANT_TYPES: dict[str, str] = {
    "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
}


class QuantizeError(RuntimeError):
    """llama.cpp refused to quantize; the message names the files and the type."""


def parse_quants(text: str) -> tuple[str, ...]:
    """`q8_0,q4_k_m` → ("q8_0", "q4_k_m"); an unknown name is an error that lists the known ones."""
    chosen = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [name for name in chosen if name not in QUANT_TYPES]
    if unknown:
        raise ValueError(f"unknown quantization {', '.join(unknown)}; choose from {', '.join(QUANT_TYPES)}")
    return chosen


_FALLBACK = re.compile(r"(\d+) of (\d+) tensor\(s\) required fallback quantization")


def quantize_gguf(source: Path, target: Path, quant: str, threads: int | None = None) -> dict[str, int]:
    """Write `target`, the `quant` quantization of the 16/32-bit GGUF `source`; returns how many tensors
    llama.cpp had to quantize with a fallback type (0 when every row width suits the K-quants)."""
    import llama_cpp

    if quant not in QUANT_TYPES:
        raise QuantizeError(f"unknown quantization {quant!r}; choose from {', '.join(QUANT_TYPES)}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANT_TYPES[quant])
    params.nthread = threads or os.cpu_count() or 1
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # its per-tensor log is noise here
    python_log = io.StringIO()
    with _captured_stderr() as captured, contextlib.redirect_stderr(python_log):
        status = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params))
    log = captured.read_text(encoding="utf-8", errors="replace") + python_log.getvalue()
    captured.unlink(missing_ok=True)
    if status != 0 or not target.is_file():
        tail = "\n".join(log.strip().splitlines()[-5:])
        raise QuantizeError(f"llama_model_quantize {source} → {target} ({quant}) failed with status {status}\n{tail}")
    found = _FALLBACK.search(log)
    return {"fallback_tensors": int(found[1]) if found else 0}


@contextlib.contextmanager
def _captured_stderr() -> Iterator[Path]:
    """Point file descriptor 2 at a temporary file. llama.cpp's per-tensor warnings reach either the C
    stderr or llama-cpp-python's log callback (which prints to sys.stderr, redirected by the caller)."""
    handle, name = tempfile.mkstemp(prefix="quantize-", suffix=".log")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        os.dup2(handle, 2)
        yield Path(name)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(handle)
