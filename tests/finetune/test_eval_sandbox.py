"""The sandbox against hostile programs: each is contained and reported, quickly.

Elixir where that is what the sandbox runs (loop, allocation, files, sockets, detached OS processes via
:os.cmd and Port); shell/Python where that is the clearer test of one limit (fork bomb, CPU, file size,
output, environment). A guarantee the machine cannot give (see `isolation().notes`) is skipped, named.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from finetune.eval.sandbox import Limits, isolation, make_runner, run_sandboxed

ELIXIR = shutil.which("elixir")
needs_elixir = pytest.mark.skipif(ELIXIR is None, reason="elixir is not installed")
ELIXIR_ENV = {"ERL_CRASH_DUMP_SECONDS": "0"}
SH = shutil.which("sh") or "/bin/sh"
SYSTEM_PYTHON = next((p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.path.exists(p)), None)


def elixir(program: str, limits: Limits) -> object:
    assert ELIXIR is not None
    return run_sandboxed([ELIXIR, "main.exs"], {"main.exs": program}, limits, ELIXIR_ENV)


def processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def unique_sleep() -> str:
    """A `sleep` argument no other process on the machine has: the marker of a would-be survivor."""
    return f"{1000 + random.randrange(1000)}.{random.randrange(10**8):08d}"


# -- a normal run --------------------------------------------------------------------------------------------


@needs_elixir
def test_default_limits_let_a_normal_exunit_run_pass() -> None:
    program = (
        "ExUnit.start()\ndefmodule T do\n  use ExUnit.Case, async: true\n"
        "  test 'sum' do\n    assert 6 == Enum.sum([1, 2, 3])\n  end\nend\n"
    )
    result = elixir(program, Limits())
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "1 test, 0 failures" in result.stdout
    assert not result.timed_out and result.killed_reason == ""


def test_fresh_directory_is_cwd_and_home_minimal_env_removed_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_TEST_SECRET", "hunter2")
    result = run_sandboxed(
        [SH, "-c", 'pwd; echo "$HOME"; echo "$TMPDIR"; cat given.txt; env'],
        {"given.txt": "hello\n", "sub/dir/f.txt": "x"},
        Limits(timeout_s=3),
    )
    assert result.exit_code == 0, result.stderr
    cwd, home, tmpdir, given, *env = result.stdout.splitlines()
    assert cwd == home == tmpdir and given == "hello"
    assert not Path(cwd).exists()  # removed afterwards
    names = {line.split("=", 1)[0] for line in env}
    assert "SANDBOX_TEST_SECRET" not in names
    assert names <= {"PATH", "LANG", "HOME", "TMPDIR", "PWD", "SHLVL", "_", "OLDPWD"}
    assert "LANG=C.UTF-8" in env


def test_file_names_cannot_leave_the_directory() -> None:
    with pytest.raises(ValueError, match="leaves the run directory"):
        run_sandboxed([SH, "-c", "true"], {"../escape.txt": "x"}, Limits(timeout_s=3))


def test_output_is_truncated_and_drained() -> None:
    # 5 MB on each stream: more than a pipe holds, so the program would block if we stopped reading.
    script = "head -c 5000000 /dev/zero | tr '\\0' a; head -c 5000000 /dev/zero | tr '\\0' b >&2"
    result = run_sandboxed([SH, "-c", script], {}, Limits(timeout_s=5, output_chars=100))
    assert result.exit_code == 0 and not result.timed_out
    assert result.stdout == "a" * 100 and result.stderr == "b" * 100


def test_runner_for_metrics() -> None:
    exit_code, output = make_runner(Limits(timeout_s=3))(
        [SH, "-c", "cat f; echo err >&2; exit 3"], {"f": "out\n"}
    )
    assert exit_code == 3 and output == "out\nerr\n"


# -- hostile programs ----------------------------------------------------------------------------------------


@needs_elixir
def test_infinite_loop_times_out_and_is_killed() -> None:
    program = "defmodule Loop do\n  def spin(n), do: spin(n + 1)\nend\nLoop.spin(0)\n"
    start = time.monotonic()
    result = elixir(program, Limits(timeout_s=1.5))
    assert result.timed_out and result.killed_reason == "timeout" and result.exit_code is None
    assert time.monotonic() - start < 1.5 + 1.5


def test_program_that_closes_its_output_and_spins_still_times_out() -> None:
    result = run_sandboxed([SH, "-c", "exec >&- 2>&-; while :; do :; done"], {}, Limits(timeout_s=1))
    assert result.timed_out and result.seconds < 2.5


def test_fork_bomb_is_contained() -> None:
    marker = f"forkbomb-{random.randrange(10**9)}"
    limits = Limits(timeout_s=2, processes=32)
    start = time.monotonic()
    result = run_sandboxed([SH, "-c", "f() { f | f & }; f; sleep 30", marker], {}, limits)
    assert time.monotonic() - start < 2 + 2
    assert result.timed_out or result.exit_code != 0
    if isolation().drops_privileges or os.geteuid() != 0:
        # The process limit bit: forks were refused, not merely cut short by the timeout.
        assert "fork" in result.stderr.lower(), result.stderr
    time.sleep(0.2)
    assert processes_with(marker) == []  # nothing of the bomb is left
    assert subprocess.run(["true"], check=False, timeout=10).returncode == 0  # the machine is usable
    after = run_sandboxed([SH, "-c", "echo fine"], {}, Limits(timeout_s=3))
    assert after.stdout == "fine\n"


@needs_elixir
def test_ten_gigabyte_allocation_fails_and_is_reported() -> None:
    program = 'big = :binary.copy("x", 10_000_000_000)\nIO.puts(byte_size(big))\n'
    result = elixir(program, Limits(timeout_s=5))
    output = result.stdout + result.stderr
    assert not result.timed_out and result.exit_code not in (0, None), output
    assert "Cannot allocate" in output, output
    assert "10000000000\n" not in result.stdout
    assert result.seconds < 4


@pytest.mark.skipif(SYSTEM_PYTHON is None, reason="no system python3")
def test_ten_gigabyte_allocation_python() -> None:
    assert SYSTEM_PYTHON is not None
    result = run_sandboxed([SYSTEM_PYTHON, "-c", "b = bytearray(10 * 1024**3)"], {}, Limits(timeout_s=5))
    assert result.exit_code == 1 and "MemoryError" in result.stderr, result.stderr


def test_cpu_limit_kills_a_busy_program() -> None:
    start = time.monotonic()
    result = run_sandboxed([SH, "-c", "while :; do :; done"], {}, Limits(timeout_s=10, cpu_s=1))
    assert not result.timed_out
    assert result.killed_reason in ("signal SIGKILL", "signal SIGXCPU"), result
    assert result.exit_code is not None and result.exit_code < 0 and result.stderr == ""
    assert time.monotonic() - start < 5


def test_file_size_limit() -> None:
    script = "head -c 5000000 /dev/zero > big; echo rc=$?; wc -c < big"
    result = run_sandboxed([SH, "-c", script], {}, Limits(timeout_s=5, file_size_mb=1))
    rc_line, size = result.stdout.split()
    assert rc_line != "rc=0" and int(size) == 1024 * 1024


@pytest.fixture
def canary() -> Iterator[Path]:
    """A file outside the sandbox that the sandbox can reach and read: root-owned 0o755 / 0o644."""
    directory = Path(tempfile.mkdtemp(prefix="canary-"))
    directory.chmod(0o755)
    path = directory / "canary.txt"
    path.write_text("canary")
    path.chmod(0o644)
    yield path
    shutil.rmtree(directory)


@needs_elixir
def test_cannot_write_outside_its_directory(canary: Path) -> None:
    iso = isolation()
    if not iso.drops_privileges:
        pytest.skip("the program runs as the caller's uid here: " + "; ".join(iso.notes))
    before = canary.stat()
    program = f"""
path = {str(canary)!r}
IO.puts("read=" <> inspect(File.read(path)))
IO.puts("write=" <> inspect(File.write(path, "pwned")))
IO.puts("append=" <> inspect(File.write(path, "pwned", [:append])))
IO.puts("rm=" <> inspect(File.rm(path)))
IO.puts("chmod=" <> inspect(File.chmod(path, 0o777)))
IO.puts("new=" <> inspect(File.write(Path.join(Path.dirname(path), "new.txt"), "x")))
IO.puts("inside=" <> inspect(File.write("inside.txt", "ok")))
"""
    result = elixir(program, Limits(timeout_s=5))
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert lines["read"] == '{:ok, "canary"}', result.stdout + result.stderr  # reachable, so a real test
    assert lines["write"] == lines["append"] == lines["rm"] == lines["new"] == "{:error, :eacces}"
    assert lines["chmod"] == "{:error, :eperm}"
    assert lines["inside"] == ":ok"  # its own directory is writable
    after = canary.stat()
    assert canary.read_text() == "canary"
    assert (after.st_mtime_ns, stat.S_IMODE(after.st_mode)) == (before.st_mtime_ns, 0o644)
    assert sorted(p.name for p in canary.parent.iterdir()) == ["canary.txt"]


@needs_elixir
def test_no_network_to_a_loopback_listener() -> None:
    iso = isolation()
    if not iso.network:
        pytest.skip("no network namespace here: " + "; ".join(iso.notes))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        program = (
            f"result = :gen_tcp.connect({{127, 0, 0, 1}}, {port}, [:binary, active: false], 1000)\n"
            'IO.puts("connect=" <> inspect(result))\n'
        )
        result = elixir(program, Limits(timeout_s=5))
        assert result.stdout.startswith("connect={:error, "), result.stdout + result.stderr
        listener.settimeout(0.3)
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody ever connected


@needs_elixir
def test_detached_os_processes_do_not_survive() -> None:
    iso = isolation()
    if not (iso.pid_namespace or iso.drops_privileges):
        pytest.skip("no PID namespace and no throwaway uid here: " + "; ".join(iso.notes))
    via_cmd, via_port = unique_sleep(), unique_sleep()
    program = f"""
:os.cmd('setsid sh -c "echo up > os_cmd.started; exec sleep {via_cmd}" > /dev/null 2>&1 &')
Port.open({{:spawn, "setsid sh -c 'echo up > port.started; exec sleep {via_port}' > /dev/null 2>&1 &"}}, [])
wait = fn wait, n ->
  if n > 0 and not (File.exists?("os_cmd.started") and File.exists?("port.started")) do
    Process.sleep(20)
    wait.(wait, n - 1)
  end
end
wait.(wait, 100)
IO.puts(inspect({{File.exists?("os_cmd.started"), File.exists?("port.started")}}))
"""
    result = elixir(program, Limits(timeout_s=5))
    assert result.stdout.strip() == "{true, true}", result.stdout + result.stderr  # they did start
    time.sleep(0.2)
    assert processes_with(via_cmd) == [] and processes_with(via_port) == []


def test_detached_process_holding_the_output_pipe_neither_survives_nor_hangs_the_run() -> None:
    iso = isolation()
    if not (iso.pid_namespace or iso.drops_privileges):
        pytest.skip("no PID namespace and no throwaway uid here: " + "; ".join(iso.notes))
    marker = unique_sleep()
    result = run_sandboxed(
        [SH, "-c", f"setsid sleep {marker} & sleep 0.2; echo spawned"], {}, Limits(timeout_s=3)
    )
    assert result.stdout == "spawned\n" and not result.timed_out
    assert result.seconds < 2
    time.sleep(0.2)
    assert processes_with(marker) == []
