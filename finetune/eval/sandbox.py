"""Run untrusted programs (model-generated Elixir) with limits, no network, and nothing left behind.

Each run gets, from the strongest mechanism that works on the machine (probed once, see `isolation()`):

* a fresh temporary directory as cwd, HOME and TMPDIR, holding the given files, removed afterwards;
* its own session/process group (`start_new_session`), killed with SIGKILL on timeout and after exit;
* rlimits, set in the child by util-linux `prlimit` (a `preexec_fn` is not safe when `run_many` starts
  runs from several threads; it is the fallback when `prlimit` is missing): CPU, DATA, AS, FSIZE,
  NPROC, NOFILE, CORE=0;
* a minimal environment: PATH, LANG=C.UTF-8, HOME and TMPDIR = the run's directory;
* `unshare --net`: a new network namespace with only a downed loopback — no connection anywhere,
  not even to 127.0.0.1 of the host;
* `unshare --pid --fork --kill-child --mount-proc`: the program runs as init of its own PID namespace,
  so when it ends (or we kill the group) the kernel kills every process inside — including detached
  (setsid/daemonised) grandchildren that escape the process group;
* as root: `setpriv` to a throwaway uid/gid (one per concurrent run, from a range no account uses),
  because root ignores RLIMIT_NPROC and may write anywhere. Each run then counts its own processes,
  and can write only to its directory and to world-writable places (/tmp, /dev/shm: sticky, so other
  users' files there are safe). Without PID namespace, every process of that uid is killed after the run.

Not root: the namespaces come from an unprivileged user namespace (`unshare --user --map-root-user`)
where the kernel allows it. The program then runs as the caller's uid: it can write wherever the caller
can, and RLIMIT_NPROC counts all of the caller's processes (so the limit is set to the caller's current
task count + `processes`). Where no namespace works, `network_isolated`/`pid_isolated` are False in the
result: the network is reachable and a process that calls setsid() outlives the run.
"""

from __future__ import annotations

import contextlib
import os
import random
import resource
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

_MB = 1024 * 1024
# Throwaway uids for root runs: far above any account, below 2^31 (setpriv/kernel limits).
_UID_BASE = 1_900_000_000
_UID_SPAN = 1_000_000
_FALLBACK_UID = 65534  # nobody, when the uid range is not mapped (e.g. a user-namespaced container)
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
# unshare --fork re-raises its child's fatal signal on itself, except SIGKILL (which cannot be reset to
# SIG_DFL): then it prints this and exits 1. The program, init of its PID namespace, can only die of
# SIGKILL (CPU hard limit, OOM killer) or of a signal it let through — so this line means SIGKILL.
_UNSHARE_SIGKILL = b"unshare: sigprocmask unblock failed: Invalid argument\n"


def _default_processes() -> int:
    # The BEAM starts ~2 threads per core (schedulers + dirty CPU schedulers) + ~20 more, and threads
    # count toward RLIMIT_NPROC: 256 covers a 2-core VM with ample room and a 64-core server too.
    return max(256, 3 * (os.cpu_count() or 1) + 64)


@dataclass(frozen=True)
class Limits:
    """Defaults let `elixir prog.exs` (Debian 1.14 / OTP 25, ~0.5 s) pass with room to spare.

    memory_mb is RLIMIT_DATA (private writable memory actually mapped for use), not RLIMIT_AS: the BEAM
    reserves ~2.1 GB of address space at start-up (a 1 GB literal super carrier, JIT areas, thread stacks)
    while using ~60 MB. Measured here: under AS = 1 GB it cannot start, under AS = 2 GB it starts but cannot
    allocate even 200 MB; under DATA = 2 GB it allocates 1.5 GB and a 10 GB allocation fails at once.
    virtual_mb (RLIMIT_AS) is only a backstop for shared mappings, which RLIMIT_DATA does not count.
    cpu_s is a backstop behind the wall-clock timeout_s (CPU time sums over the BEAM's threads).
    output_chars is what MultiPL-E keeps of stdout and of stderr."""

    timeout_s: float = 5.0
    cpu_s: int = 20
    memory_mb: int = 2048
    virtual_mb: int = 8192
    file_size_mb: int = 16
    processes: int = field(default_factory=_default_processes)
    open_files: int = 1024
    output_chars: int = 2048


@dataclass(frozen=True)
class Isolation:
    """What `run_sandboxed` can use on this machine (probed once per process)."""

    network: bool  # own network namespace
    pid_namespace: bool  # own PID namespace: nothing outlives the run
    user_namespace: bool  # namespaces obtained unprivileged, via a user namespace
    drops_privileges: bool  # root: runs as a throwaway uid
    rlimits_via: str  # "prlimit" or "preexec_fn"
    notes: tuple[str, ...] = ()
    # argv prefixes (internal; kept so the probe's decision is exactly what runs)
    unshare_argv: tuple[str, ...] = ()
    setpriv_path: str = ""
    uid_range: tuple[int, int] = (_FALLBACK_UID, 1)
    drop_first: bool = False  # setpriv before unshare (root without CAP_SYS_ADMIN)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for internal in ("unshare_argv", "setpriv_path", "uid_range", "drop_first"):
            data.pop(internal)
        data["notes"] = list(self.notes)
        return data


@dataclass(frozen=True)
class SandboxResult:
    exit_code: int | None  # None when killed on timeout; negative = killed by that signal
    timed_out: bool
    stdout: str
    stderr: str
    seconds: float
    killed_reason: str  # "" | "timeout" | "signal SIGKILL" (e.g. CPU limit) | "signal SIGXFSZ" …
    network_isolated: bool = False
    pid_isolated: bool = False


# -- probing ------------------------------------------------------------------------------------------------


def _works(argv: list[str]) -> bool:
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _setpriv_argv(setpriv: str, uid: int) -> list[str]:
    # --no-new-privs: setuid binaries (su, ping…) cannot regain privileges.
    return [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs", "--"]


def _throwaway_uids(setpriv: str | None, true: str) -> tuple[tuple[int, int], bool, list[str]]:
    """(uid range, can drop, notes) for root."""
    if setpriv is None:
        return (_FALLBACK_UID, 1), False, ["setpriv not found"]
    if _works([*_setpriv_argv(setpriv, _UID_BASE + _UID_SPAN - 1), true]):
        return (_UID_BASE, _UID_SPAN), True, []
    if _works([*_setpriv_argv(setpriv, _FALLBACK_UID), true]):
        return (
            (_FALLBACK_UID, 1),
            True,
            ["uid range unmapped: all runs share uid 65534 (and its NPROC count)"],
        )
    return (_FALLBACK_UID, 1), False, ["setpriv cannot change uid here"]


def _probe() -> Isolation:
    notes: list[str] = []
    root = os.geteuid() == 0
    true = shutil.which("true") or "/bin/true"
    unshare = shutil.which("unshare")
    setpriv = shutil.which("setpriv") if root else None
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        notes.append("prlimit not found: rlimits set in a preexec_fn (not fork-safe with threads)")

    uid_range, drops, uid_notes = _throwaway_uids(setpriv, true) if root else ((_FALLBACK_UID, 1), False, [])
    notes += uid_notes
    probe_drop = _setpriv_argv(setpriv, uid_range[0] + uid_range[1] - 1) if drops and setpriv else []
    pid_ns = ["--pid", "--fork", "--kill-child"]
    flag_sets = [
        (["--net", *pid_ns, "--mount-proc"], True, True),
        (["--net", *pid_ns], True, True),
        ([*pid_ns], False, True),
        (["--net"], True, False),
    ]
    user_ns = ["--user", "--map-root-user"]
    # (extra flags, drop privileges before unshare). Root with CAP_SYS_ADMIN unshares, then drops to the
    # throwaway uid; root without it (a container) drops first, then tries a user namespace as that uid.
    modes = [([], False), (user_ns, True)] if root else [(user_ns, False)]
    chosen: tuple[tuple[str, ...], bool, bool, bool, bool] = ((), False, False, False, False)
    if unshare is None:
        notes.append("util-linux unshare not found: no network or PID namespace")
    else:
        for extra, drop_first in modes:
            if drop_first and not probe_drop:
                continue
            found = next(
                (
                    ((unshare, *extra, *flags, "--"), net, pid)
                    for flags, net, pid in flag_sets
                    if _works([*(probe_drop if drop_first else []), unshare, *extra, *flags, "--", true])
                ),
                None,
            )
            if found is not None:
                chosen = (*found, bool(extra), drop_first)
                break
        else:
            notes.append("unshare refused every namespace here (no CAP_SYS_ADMIN, no user namespaces)")
    argv, network, pid, in_user_ns, drop_first = chosen
    if not network:
        notes.append("no network namespace: the program can open sockets")
    if not pid:
        notes.append(
            "no PID namespace: a process that calls setsid() can outlive the run"
            + (" unless it keeps the throwaway uid (all its processes are killed)" if drops else "")
        )
    if root and not drops:
        notes.append("root without a throwaway uid: RLIMIT_NPROC is not enforced and writes are not confined")
    if not root:
        notes.append("not root: the program runs as the caller's uid and can write where the caller can")
    return Isolation(
        network=network,
        pid_namespace=pid,
        user_namespace=in_user_ns,
        drops_privileges=drops,
        rlimits_via="prlimit" if prlimit else "preexec_fn",
        notes=tuple(notes),
        unshare_argv=argv,
        setpriv_path=setpriv or "",
        uid_range=uid_range,
        drop_first=drop_first,
    )


_probe_lock = threading.Lock()
_probed: Isolation | None = None


def isolation() -> Isolation:
    global _probed
    with _probe_lock:
        if _probed is None:
            _probed = _probe()
        return _probed


# -- throwaway uids -----------------------------------------------------------------------------------------

_uids_lock = threading.Lock()
_uids_in_use: set[int] = set()


def _take_uid(uid_range: tuple[int, int]) -> int:
    base, span = uid_range
    if span == 1:
        return base
    with _uids_lock:
        while True:
            uid = base + random.randrange(span)  # random: other processes use the same range
            if uid not in _uids_in_use:
                _uids_in_use.add(uid)
                return uid


def _release_uid(uid: int) -> None:
    with _uids_lock:
        _uids_in_use.discard(uid)


def _tasks_of(uid: int) -> list[tuple[int, int]]:
    """(pid, threads) of the processes whose real uid is `uid`, read from /proc."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue  # gone meanwhile
        fields_ = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields_.get("Uid", "-1").split()[0]) == uid:
            found.append((int(entry.name), int(fields_.get("Threads", "1"))))
    return found


def _kill_uid(uid: int) -> None:
    """Without a PID namespace: setsid() escapes killpg, but not the throwaway uid."""
    for _ in range(3):  # a forking process can add children while we kill
        tasks = _tasks_of(uid)
        if not tasks:
            return
        for pid, _threads in tasks:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


# -- running ------------------------------------------------------------------------------------------------


def _rlimits(limits: Limits, nproc: int) -> list[tuple[str, int, int]]:
    """(prlimit option, resource constant, value), soft = hard so nothing can raise them."""
    return [
        ("--cpu", resource.RLIMIT_CPU, limits.cpu_s),
        ("--data", resource.RLIMIT_DATA, limits.memory_mb * _MB),
        ("--as", resource.RLIMIT_AS, limits.virtual_mb * _MB),
        ("--fsize", resource.RLIMIT_FSIZE, limits.file_size_mb * _MB),
        ("--nproc", resource.RLIMIT_NPROC, nproc),
        ("--nofile", resource.RLIMIT_NOFILE, limits.open_files),
        ("--core", resource.RLIMIT_CORE, 0),
    ]


def _preexec(values: list[tuple[str, int, int]]) -> Callable[[], None]:
    def apply() -> None:
        for _option, which, value in values:
            resource.setrlimit(which, (value, value))

    return apply


def _command(argv: list[str], limits: Limits, iso: Isolation, uid: int | None) -> tuple[list[str], Any]:
    """The full argv (prlimit → unshare → setpriv → program) and the preexec_fn fallback, if any."""
    if uid is not None:
        nproc = limits.processes  # the throwaway uid runs nothing else
    else:
        # RLIMIT_NPROC counts every task of the real uid, the caller's own included.
        nproc = sum(threads for _pid, threads in _tasks_of(os.getuid())) + limits.processes
    values = _rlimits(limits, nproc)
    prefix: list[str] = []
    preexec = None
    prlimit = shutil.which("prlimit") if iso.rlimits_via == "prlimit" else None
    if prlimit:
        prefix = [prlimit, *(f"{option}={value}" for option, _which, value in values), "--"]
    else:
        preexec = _preexec(values)
    drop = _setpriv_argv(iso.setpriv_path, uid) if uid is not None else []
    if iso.drop_first:
        prefix += [*drop, *iso.unshare_argv]
    else:
        prefix += [*iso.unshare_argv, *drop]
    return prefix + argv, preexec


def _write_files(directory: Path, files: Mapping[str, str], uid: int | None) -> None:
    for name, text in files.items():
        path = (directory / name).resolve()
        if directory.resolve() not in path.parents:
            raise ValueError(f"sandbox file name {name!r} leaves the run directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if uid is not None:
        for path in [directory, *directory.rglob("*")]:
            os.chown(path, uid, uid)


def _rmtree(directory: Path) -> None:
    """Remove the run directory even if the program left read-only or mode-000 directories."""

    def fix(_function: Any, path: str, *_exc: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(path), stat.S_IRWXU)
            if os.path.islink(path):
                os.unlink(path)  # never chmod through a link the program planted
                return
            os.chmod(path, stat.S_IRWXU)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)

    if sys.version_info >= (3, 12):
        shutil.rmtree(directory, onexc=fix)
    else:
        shutil.rmtree(directory, onerror=fix)


class _Capture:
    """Keeps the first `chars` characters of a stream, drains (and drops) the rest so the program
    never blocks on a full pipe."""

    def __init__(self, chars: int) -> None:
        self.limit = 4 * chars + 4  # UTF-8: at most 4 bytes a character
        self.chars = chars
        self.data = bytearray()
        self.tail = b""  # the last bytes, where wrappers (unshare) report

    def add(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        self.tail = (self.tail + chunk)[-256:]

    def drop(self, line: bytes) -> None:
        self.data = bytearray(self.data.replace(line, b""))

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")[: self.chars]


def _exited(pid: int) -> bool:
    """Has the child exited? WNOWAIT leaves it a zombie, so its pid (= our process group id) cannot be
    reused before we killpg the group."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _pump(proc: subprocess.Popen[bytes], captures: dict[int, _Capture], deadline: float) -> bool:
    """Read stdout/stderr until both close and the child exits, or the deadline. True on timeout."""
    selector = selectors.DefaultSelector()
    for stream in (proc.stdout, proc.stderr):
        assert stream is not None
        os.set_blocking(stream.fileno(), False)
        selector.register(stream.fileno(), selectors.EVENT_READ)
    exited_at: float | None = None
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                return True
            if exited_at is None and _exited(proc.pid):
                exited_at = now
            if not selector.get_map():
                if exited_at is not None:
                    return False
                time.sleep(min(0.01, deadline - now))  # streams closed, program still running
                continue
            if exited_at is not None and now - exited_at > 0.5:
                return False  # something outside the group holds the pipes; don't wait for it
            for key, _events in selector.select(timeout=min(0.05, deadline - now)):
                try:
                    chunk = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                if chunk:
                    captures[key.fd].add(chunk)
                else:
                    selector.unregister(key.fd)
    finally:
        selector.close()


def run_sandboxed(
    argv: list[str],
    files: Mapping[str, str],
    limits: Limits,
    env: Mapping[str, str] | None = None,
) -> SandboxResult:
    """Run `argv` in a fresh directory holding `files` (name → text), under `limits`. `env` adds
    variables to the minimal environment. Never raises for what the program does."""
    iso = isolation()
    uid = _take_uid(iso.uid_range) if iso.drops_privileges else None
    directory = Path(tempfile.mkdtemp(prefix="sandbox-"))
    try:
        _write_files(directory, files, uid)
        environment = {
            "PATH": os.environ.get("PATH", _DEFAULT_PATH),
            "LANG": "C.UTF-8",
            "HOME": str(directory),
            "TMPDIR": str(directory),
            **(env or {}),
        }
        command, preexec = _command(argv, limits, iso, uid)
        start = time.monotonic()
        proc = subprocess.Popen(
            command,
            cwd=directory,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # own process group: killpg reaches the program's children
            preexec_fn=preexec,
            close_fds=True,
        )
        assert proc.stdout is not None and proc.stderr is not None
        out, err = _Capture(limits.output_chars), _Capture(limits.output_chars)
        try:
            timed_out = _pump(
                proc, {proc.stdout.fileno(): out, proc.stderr.fileno(): err}, start + limits.timeout_s
            )
        finally:
            # Always: on timeout it stops the program; after exit it kills what it left in its group.
            # The child is still unreaped here, so the group id cannot belong to anyone else.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            returncode = proc.wait()
            seconds = time.monotonic() - start
            proc.stdout.close()
            proc.stderr.close()
            if uid is not None and not iso.pid_namespace and iso.uid_range[1] > 1:
                _kill_uid(uid)  # never for the shared 65534: system daemons run as nobody too
    finally:
        _rmtree(directory)
        if uid is not None:
            _release_uid(uid)
    if returncode == 1 and iso.pid_namespace and _UNSHARE_SIGKILL in err.tail:
        err.drop(_UNSHARE_SIGKILL)
        returncode = -signal.SIGKILL
    if timed_out:
        exit_code, reason = None, "timeout"
    elif returncode < 0:
        exit_code, reason = returncode, f"signal {_signal_name(-returncode)}"
    else:
        exit_code, reason = returncode, ""
    return SandboxResult(
        exit_code=exit_code,
        timed_out=timed_out,
        stdout=out.text(),
        stderr=err.text(),
        seconds=round(seconds, 3),
        killed_reason=reason,
        network_isolated=iso.network,
        pid_isolated=iso.pid_namespace,
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)  # a real-time signal has no name


# (argv, files written into the run's directory) -> (exit code or None when killed, output): what the
# tool metrics (finetune/eval/metrics.py: compiles, formatted) run untrusted code with.
Runner = Callable[[list[str], dict[str, str]], tuple[int | None, str]]


def make_runner(limits: Limits, env: Mapping[str, str] | None = None) -> Runner:
    """The `Runner` that finetune.eval.metrics takes: (argv, files) -> (exit code, stdout + stderr)."""

    def run(argv: list[str], files: dict[str, str]) -> tuple[int | None, str]:
        result = run_sandboxed(argv, files, limits, env)
        return result.exit_code, result.stdout + result.stderr

    return run
