"""Run Elixir programs before and after a rewrite with Debian's `elixir` and compare what they print.

`tests/idioms/programs/<rule_id>.exs` holds programs separated by a line `# ---`. Each program prints
its results (IO.inspect / IO.puts); its last expression's value is printed too. All programs of one side
run in a single `elixir` process (one VM start), each evaluated in isolation and delimited by markers;
an exception is reported by its module, so "raises the same error" also counts as the same behaviour.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

PROGRAMS_DIR = Path(__file__).parent / "programs"
SEPARATOR = "# ---"
MARK = "\x1eDEVSTRAL-PROGRAM "

RUNNER = r"""
[dir] = System.argv()
for file <- dir |> File.ls!() |> Enum.sort() do
  IO.write("\x1eDEVSTRAL-PROGRAM " <> file <> "\n")
  result =
    try do
      {value, _binding} = Code.eval_file(Path.join(dir, file))
      "value " <> inspect(value, limit: :infinity, printable_limit: :infinity)
    rescue
      error -> "raised " <> inspect(error.__struct__)
    catch
      kind, value -> "caught " <> inspect({kind, value})
    end
  IO.write(result <> "\n")
end
"""

ELIXIR = shutil.which("elixir")


def load_programs(rule_id: str) -> list[str]:
    path = PROGRAMS_DIR / f"{rule_id}.exs"
    if not path.exists():
        return []
    chunks = path.read_text(encoding="utf-8").split(f"\n{SEPARATOR}\n")
    return [chunk.strip() + "\n" for chunk in chunks if chunk.strip()]


def run_programs(programs: list[str], timeout_s: float = 120.0) -> list[str]:
    """What each program printed (its own output, then its value or error), in order."""
    if ELIXIR is None:
        raise RuntimeError("elixir is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "programs"
        folder.mkdir()
        for index, program in enumerate(programs):
            (folder / f"{index:05d}.exs").write_text(program, encoding="utf-8")
        runner = Path(tmp) / "runner.exs"
        runner.write_text(RUNNER, encoding="utf-8")
        done = subprocess.run(
            [ELIXIR, str(runner), str(folder)], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"elixir runner failed ({done.returncode}):\n{done.stderr[-4000:]}")
    outputs = done.stdout.split(MARK)[1:]
    if len(outputs) != len(programs):
        raise RuntimeError(f"expected {len(programs)} program outputs, got {len(outputs)}:\n{done.stdout[-4000:]}")
    return [chunk.split("\n", 1)[1] for chunk in outputs]


def assert_same_behaviour(rules) -> None:
    """Every program of every rule fires the rule and prints the same before and after one pass."""
    from tests.idioms.harness import finding_count, one_pass

    befores, afters, labels = [], [], []
    for rule in rules:
        programs = load_programs(rule.id)
        assert programs, f"{rule.id}: no programs in {PROGRAMS_DIR / (rule.id + '.exs')}"
        for index, program in enumerate(programs):
            assert finding_count(rule, program) > 0, f"{rule.id} program {index} does not exercise the rule"
            befores.append(program)
            afters.append(one_pass(rule, program))
            labels.append(f"{rule.id} program {index}")
    for label, before, after, out_before, out_after in zip(
        labels, befores, afters, run_programs(befores), run_programs(afters), strict=True
    ):
        assert out_before == out_after, f"{label} changed behaviour:\n{before}\n=> {after}\n{out_before!r} != {out_after!r}"
