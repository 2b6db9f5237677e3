"""Dataset build throughput on the Debian OTP sources, with 1 and 2 worker processes.

`finetune collect otp` once, then `build_datasets` (clean → secrets → licence → decontaminate → dedupe →
stage-1/2 samples → card) with an empty cache for each worker count, in this process. Reported: files/s
and MB/s of raw input, and the speed-up from 1 to 2 workers (target ≥ 1.8×). The tokenizer report is
left out: it is a fixed cost that does not depend on the worker count.

Usage: python bench/dataset_build.py [--root /usr/lib/erlang/lib] [--repeat 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from finetune.dataset.build import BuildOptions, build_datasets  # noqa: E402
from finetune.sources import otp  # noqa: E402
from finetune.store import CollectionWriter  # noqa: E402


def timed_build(raw: Path, workers: int, scratch: Path) -> float:
    out = scratch / f"out-{workers}"
    options = BuildOptions(raw=raw, out=out, workers=workers, cache=None, tokenizer_report=False)
    started = time.perf_counter()
    build_datasets(options)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=otp.DEFAULT_ROOT)
    parser.add_argument("--repeat", type=int, default=2, help="runs per worker count; the best is kept")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        raw = scratch / "raw"
        with CollectionWriter(raw, "otp") as writer:
            writer.add_all(otp.collect(args.root))
            files, size = writer.records, writer.bytes
        results = {}
        for workers in (1, 2):
            seconds = min(timed_build(raw, workers, scratch) for _ in range(args.repeat))
            results[workers] = {"seconds": round(seconds, 2), "files_per_s": round(files / seconds, 1),
                                "mb_per_s": round(size / 1e6 / seconds, 2)}
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "input": {"files": files, "mb": round(size / 1e6, 1), "root": str(args.root)},
        "workers": results,
        "speedup_1_to_2": round(results[1]["seconds"] / results[2]["seconds"], 2),
        "target_speedup": 1.8,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
