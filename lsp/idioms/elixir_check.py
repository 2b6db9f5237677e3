"""Checks by the real Elixir compiler, through one long-lived `elixir` process.

Starting the VM costs ~0.3 s, so one process serves every check: the request is a line
`<command> <byte length>` followed by the source; the reply is one line, `ok` or `error <message>`.
`quoted` runs `Code.string_to_quoted/1`; `compile` compiles the source in the checker VM (with module
conflicts ignored) and unloads what it defined. A check that hangs is killed after a timeout and the
process is restarted on the next call (its start, which ends with `ready`, has its own time limit); a
missing `elixir` simply makes every check report "unavailable".
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SERVE = r"""
:io.setopts(:standard_io, binary: true, encoding: :latin1)
Code.put_compiler_option(:ignore_module_conflict, true)

defmodule DevstralElixirCheck do
  def loop do
    case IO.binread(:standard_io, :line) do
      :eof -> :ok
      {:error, _} -> :ok
      line ->
        [command, size] = line |> String.trim() |> String.split(" ")
        source = if size == "0", do: "", else: IO.binread(:standard_io, String.to_integer(size))
        reply = try do
          run(command, source)
        rescue
          error -> {:error, Exception.message(error)}
        catch
          kind, value -> {:error, inspect({kind, value})}
        end
        out = case reply do
          :ok -> "ok"
          {:error, message} -> "error " <> String.replace(message, "\n", " ")
        end
        IO.binwrite(:standard_io, out <> "\n")
        loop()
    end
  end

  defp run("quoted", source) do
    case Code.string_to_quoted(source) do
      {:ok, _} -> :ok
      {:error, {location, message, token}} -> {:error, "line #{line(location)}: #{flatten(message)}#{flatten(token)}"}
    end
  end

  defp run("compile", source) do
    # Code.with_diagnostics/1 needs Elixir 1.15; the exception message carries the first error.
    modules = Code.compile_string(source, "nofile")
    for {module, _} <- modules do
      :code.purge(module)
      :code.delete(module)
    end
    :ok
  end

  defp line(location) when is_list(location), do: Keyword.get(location, :line, 0)
  defp line({line, _column}), do: line
  defp line(line), do: line

  defp flatten(term) when is_binary(term), do: term
  defp flatten({prefix, suffix}), do: flatten(prefix) <> flatten(suffix)
  defp flatten(term), do: inspect(term)
end

IO.binwrite(:standard_io, "ready\n")
DevstralElixirCheck.loop()
"""

# The VM's start is timed apart from the checks: on a busy machine it can take longer than a check may.
BOOT_TIMEOUT_S = 60.0


@contextmanager
def _killed_after(process: subprocess.Popen[bytes], seconds: float) -> Iterator[None]:
    """Kill `process` if the block still runs after `seconds`: a read blocked on its stdout then ends."""
    timer = threading.Timer(seconds, process.kill)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


VERSION_RE = re.compile(r"Elixir (\d+)\.(\d+)")


@cache
def elixir_version(executable: str) -> tuple[int, int] | None:
    """`elixir --version` of an executable, asked once per process (a VM start costs ~0.3 s)."""
    try:
        # stdin closed: the server's stdin is the LSP connection, which no child may read from.
        out = subprocess.run(
            [executable, "--version"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = VERSION_RE.search(out)
    return (int(found[1]), int(found[2])) if found else None


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str = ""
    available: bool = True


UNAVAILABLE = CheckResult(True, "elixir is not installed", available=False)


class ElixirChecker:
    """Thread-safe; one request at a time."""

    def __init__(self, executable: str = "elixir", timeout_s: float = 20.0):
        self.requested = executable
        self.executable = shutil.which(executable) if executable else None
        self.timeout_s = timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self.executable is not None

    def version(self) -> tuple[int, int] | None:
        return None if self.executable is None else elixir_version(self.executable)

    def quoted(self, source: str) -> CheckResult:
        """`Code.string_to_quoted/1` accepts the source."""
        return self._ask("quoted", source)

    def compiles(self, source: str) -> CheckResult:
        """The source compiles (its modules are unloaded again)."""
        return self._ask("compile", source)

    def _start(self) -> subprocess.Popen[bytes] | None:
        """A checker VM that said `ready`, or None when it did not within BOOT_TIMEOUT_S."""
        assert self.executable is not None
        env = {**os.environ, "ELIXIR_ERL_OPTIONS": "+fnu"}
        process = subprocess.Popen(
            [self.executable, "-e", SERVE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # compile warnings; the verdict comes on stdout
            env=env,
            cwd=Path.home() if Path.home().exists() else None,
        )
        assert process.stdout is not None
        with _killed_after(process, BOOT_TIMEOUT_S):
            ready = process.stdout.readline().strip() == b"ready"
        if not ready:
            process.kill()
            process.wait()
            return None
        return process

    def _ask(self, command: str, source: str) -> CheckResult:
        if self.executable is None:
            return UNAVAILABLE
        data = source.encode("utf-8")
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = self._start()
                if self._process is None:
                    return CheckResult(False, f"elixir check VM did not start within {BOOT_TIMEOUT_S:.0f} s")
            process = self._process
            assert process.stdin is not None and process.stdout is not None
            try:
                with _killed_after(process, self.timeout_s):
                    process.stdin.write(f"{command} {len(data)}\n".encode() + data)
                    process.stdin.flush()
                    reply = process.stdout.readline().decode("utf-8", "replace").rstrip("\n")
            except OSError as exc:
                self._process = None
                return CheckResult(False, f"elixir check failed: {exc}")
            if not reply:
                self._process = None
                return CheckResult(False, f"elixir check did not answer within {self.timeout_s:.0f} s")
        if reply == "ok":
            return CheckResult(True)
        return CheckResult(False, reply.removeprefix("error ").strip())

    def close(self) -> None:
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                self._process.kill()
                self._process.wait()
            self._process = None
