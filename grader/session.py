"""The judge's side of isolation: a worker subprocess holding the submission, called by handle.

    with Session(submission) as session:
        m = session.module()              # a RemoteRef to the student's phase module
        y = m.relu(x)                     # runs in the worker; y is a plain numpy array
        layer = m.Linear(3, 4, rng=0)     # a RemoteRef to an object that stays in the worker
        w = fetch(layer.weight)           # read an attribute as a plain value

Limits (Limits below): wall time per call and per check (SIGKILL the worker's process group and
every descendant, then respawn on the next call), resident memory, reply size, output file size,
recursion. A crash, exit, hang, memory blow-up, oversized reply or protocol garbage costs only
the call in flight. The worker runs in the strongest sandbox the system offers (grader.sandbox).

Memory. One budget covers a grading run (`--memory`, default 768 MiB: Gradescope's container).
The judge's share is fixed by measurement: its peak resident set is 250–330 MiB (it imports
torch for the oracles); the worker gets the rest (480 MiB by default). Measured worker peaks,
sandbox included: 60 MiB on the NumPy phases, 240–350 MiB on the torch phases on a warm machine
and up to 412 MiB for phase 2 in a fresh clone (bench/memory.py prints them), so the worker's
share keeps a margin over that and the judge's is its typical peak, not a worst case.
The worker's limit is enforced on resident memory, which is what a container's OOM killer
counts, by a watchdog in the judge that sums the RSS of the worker's process tree every 50 ms
while a call is in flight and kills it past the limit.
RLIMIT_AS counts address space, and torch reserves ~350 MiB more of it than it touches at import,
so it is only a backstop, set 768 MiB above the resident limit: it turns one gigantic allocation
into a MemoryError at once. A memory cgroup would be the best enforcement, but cgroup v2 with a
memory controller is rarely writable where the grader runs (not in Gradescope's container, not
here), so the watchdog is what runs everywhere.

Replies. Every call carries a cap: what the judge will read of the answer. By default it
follows from the call's inputs (REPLY_FACTOR × their bytes, clamped to [REPLY_FLOOR,
REPLY_CEILING]; the largest honest reply in phases 0–5 is 8.4 MB, 26× its inputs); a check can
state it with `reply_limit(m, like=expected)`. The worker answers a reply over its cap with a
description instead; a worker that ignores the cap is caught from the reply's sizes, which come
before any payload, and killed. Either way the check fails with "your relu returned an array
of shape (14000, 14000) float64 (1.5 GB) …" and nothing else is spent.
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grader import sandbox
from grader.worker import protocol

WORKER_SOURCES = Path(__file__).parent / "worker"
PROBE_SOURCES = Path(__file__).parent / "probes"
PROJECT = Path(__file__).resolve().parent.parent
BOOT = (
    "import sys; sys.path.insert(0, sys.argv[3]); import _gradschool_worker.sandbox as s; "
    "s.enter(sys.argv[4]) if len(sys.argv) > 4 else None; "
    "import _gradschool_worker.main as m; m.main()"
)
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

MiB = 1 << 20
OUTPUT_LINES = 20  # of a failing check's output, shown under it
OUTPUT_TAIL_BYTES = 64 << 10
DEFAULT_MEMORY = 768 * MiB  # Gradescope's default container (with half a vCPU)
MEMORY_VARIABLE = "GRADSCHOOL_MEMORY"  # a course's own default budget, e.g. "1G"
JUDGE_MEMORY = 288 * MiB  # the judge's typical peak; the worker's 480 MiB keeps a margin
MIN_WORKER_MEMORY = 160 * MiB  # a NumPy worker peaks at 55 MiB; torch phases need ~300
ADDRESS_SPACE_SLACK = 768 * MiB  # torch's untouched reservations (VmPeak − VmHWM ≈ 350 MiB)
REPLY_FLOOR = 16 * MiB
REPLY_FACTOR = 32
REPLY_CEILING = 24 * MiB
WATCH_SECONDS = 0.05


def parse_memory(text: str | int) -> int:
    """'768M', '1.5G', '805306368' → bytes (K, M, G are powers of 1024)."""
    if isinstance(text, int):
        return text
    units = {"K": 1 << 10, "M": MiB, "G": 1 << 30}
    spec = str(text).strip().upper().removesuffix("B").removesuffix("I")
    try:
        if spec and spec[-1] in units:
            return int(float(spec[:-1]) * units[spec[-1]])
        return int(spec)
    except ValueError:
        raise ValueError(f"--memory {text!r}: expected bytes or a size like 768M or 2G") from None


def course_memory() -> int:
    """The course's budget: $GRADSCHOOL_MEMORY (e.g. set in run_autograder), else 768 MiB."""
    return parse_memory(os.environ.get(MEMORY_VARIABLE) or DEFAULT_MEMORY)


@dataclass(frozen=True)
class Budget:
    """The memory of one grading run (judge and worker together), split explicitly."""

    total: int = field(default_factory=course_memory)

    @property
    def judge(self) -> int:
        return JUDGE_MEMORY

    @property
    def worker(self) -> int:
        return self.total - self.judge

    def __post_init__(self) -> None:
        if self.worker < MIN_WORKER_MEMORY:
            raise ValueError(
                f"--memory {self.total // MiB}M leaves the worker {self.worker // MiB} MiB after "
                f"the judge's {self.judge // MiB} MiB; give at least "
                f"{(self.judge + MIN_WORKER_MEMORY) // MiB}M (torch phases: 768M)"
            )

    def limits(self, **overrides: Any) -> Limits:
        return Limits(memory_bytes=self.worker, **overrides)

    def describe(self) -> str:
        return (
            f"{self.total // MiB} MiB (judge {self.judge // MiB} MiB, "
            f"worker {self.worker // MiB} MiB)"
        )


def jobs_for(budget: Budget, available: int | None = None, cpus: int | None = None) -> int:
    """How many grading runs of `budget` fit side by side here (batch grading's --jobs)."""
    available = _available_memory() if available is None else available
    cpus = len(os.sched_getaffinity(0)) if cpus is None else cpus
    return max(1, min(cpus, available // budget.total))


def _available_memory() -> int:
    """MemAvailable, or the memory cgroup's limit when that is smaller."""
    found = []
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            found.append(int(text))
    return min(found) if found else DEFAULT_MEMORY


@dataclass(frozen=True)
class Limits:
    call_seconds: float = 20.0  # one call into the worker
    check_seconds: float = 60.0  # everything one check does
    import_seconds: float = 30.0  # importing the submission (torch phases import torch)
    memory_bytes: int = Budget().worker  # resident memory of the worker's process tree
    output_bytes: int = 16 << 20  # what the submission may print or write to one file
    recursion_limit: int = 2000
    require_sandbox: bool = False  # refuse to grade when no isolation works (grader.sandbox)

    @property
    def address_space_bytes(self) -> int:
        return self.memory_bytes + ADDRESS_SPACE_SLACK


@dataclass
class Submission:
    """A prepared submission: a directory holding the package `submission/` with phase modules."""

    directory: Path
    module: str  # e.g. "phase0_foundations"
    forbidden_modules: list[str] = field(default_factory=list)
    forbidden_attributes: list[str] = field(default_factory=list)
    preload: list[str] = field(default_factory=list)


class WorkerFault(Exception):
    """The worker could not answer: it timed out, crashed, or sent garbage."""


class WorkerTimeout(WorkerFault):
    pass


class WorkerCrashed(WorkerFault):
    pass


class MemoryExceeded(WorkerCrashed):
    """The watchdog killed the worker: its process tree's resident memory passed the limit."""


class ImportFailed(Exception):
    """The submission could not be imported; every check of the phase fails with this."""


def output_limit_message(limit: int) -> str:
    return (
        f"[the grader stopped your output at its limit of {limit / MiB:g} MiB: everything "
        f"printed or written to a file after that failed]"
    )


class StudentError(Exception):
    """The submission raised an exception; carries its type, message and the student's frames."""

    def __init__(self, info: dict, what: str):
        self.type = str(info.get("type", "Exception"))
        self.message = str(info.get("message", ""))
        self.where = [str(line) for line in info.get("where", [])][-6:]
        self.not_implemented = bool(info.get("not_implemented"))
        self.forbidden = bool(info.get("forbidden"))
        self.oversized = bool(info.get("oversized"))  # a reply larger than the check accepts
        self.output_full = bool(info.get("output_full"))  # a write hit Limits.output_bytes
        self.what = what
        super().__init__(f"{self.type}: {self.message}")


def _become_subreaper() -> None:
    """Make orphans of a killed worker (double forks, setsid) our children, to reap them."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def _descendants(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        for child in _children_of(stack.pop()):
            found.append(child)
            stack.append(child)
    return found


class Session:
    """One submission, one worker at a time (respawned after a fault), many calls."""

    def __init__(
        self,
        submission: Submission,
        limits: Limits | None = None,
        isolation: sandbox.Isolation | None = None,
    ):
        self.submission = submission
        self.limits = limits or Limits()
        self.isolation = isolation or sandbox.choose(require=self.limits.require_sandbox)
        self.reply_cap: tuple[int, str] | None = None  # set by reply_limit()
        self.peak_memory = 0  # the worker tree's largest resident set seen (bytes)
        self.process: subprocess.Popen | None = None
        self.import_error: ImportFailed | None = None
        self.check_deadline: float | None = None
        self.check_fault: Exception | None = None
        self.call_limit: float | None = None  # a FULL=1 check's calls: see begin_check
        # calls that hung (their own time limit) or crashed the worker, by description: not
        # run again this session, so a `while True` in relu costs relu's checks only, once
        self.faulted: dict[str, WorkerFault] = {}
        self.warnings: list[str] = []
        self.violations: list[str] = []
        self.observed: list[dict] = []  # in-place changes and aliasing the worker saw this check
        self.calls = 0
        self.generation = 0  # bumped at every respawn: older handles are stale
        self.module_handle: int | None = None
        self.workdir: Path | None = None
        self.log_path: Path | None = None
        self.preexisting_children: set[int] = set()
        _become_subreaper()

    # lifecycle ------------------------------------------------------------
    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.process is not None:
            self.peak_memory = max(self.peak_memory, _tree_peak(self.process.pid))
            try:
                protocol.send(self.to_worker, {"op": "bye"}, [])
                self.process.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                pass
            self._kill()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def _prepare_workdir(self) -> Path:
        workdir = Path(tempfile.mkdtemp(prefix="gradschool-"))
        shutil.copytree(self.submission.directory / "submission", workdir / "submission")
        shutil.copytree(
            WORKER_SOURCES,
            workdir / "_gradschool_worker",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        shutil.copytree(
            PROBE_SOURCES,
            workdir / "_gradschool_worker" / "probes",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        shutil.copyfile(sandbox.__file__, workdir / "_gradschool_worker" / "sandbox.py")
        os.chmod(workdir, 0o700)
        self.isolation.prepare(workdir, PROJECT)
        return workdir

    def _spawn(self) -> None:
        if self.workdir is None:
            self.workdir = self._prepare_workdir()
        self.preexisting_children = set(_children_of(os.getpid()))
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        limits, isolation = self.limits, self.isolation

        def set_limits() -> None:
            ceiling = resource.getrlimit(resource.RLIMIT_AS)[1]  # a limit set on the whole run
            space = limits.address_space_bytes
            space = space if ceiling == resource.RLIM_INFINITY else min(space, ceiling)
            resource.setrlimit(resource.RLIMIT_AS, (space, space))
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits.output_bytes, limits.output_bytes))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            isolation.preexec()

        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        env.update(
            HOME=str(self.workdir),
            TMPDIR=str(self.workdir),
            PYTHONHASHSEED="0",
            PYTHONDONTWRITEBYTECODE="1",
            OMP_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
            OPENBLAS_NUM_THREADS="1",
            MPLBACKEND="Agg",
        )
        self.log_path = self.workdir / "output.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.isolation.command(
                    [
                        sys.executable,
                        "-I",
                        "-c",
                        BOOT,
                        str(to_worker_r),
                        str(from_worker_w),
                        str(self.workdir),
                    ],
                    self.workdir,
                ),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.workdir,
                env=env,
                pass_fds=(to_worker_r, from_worker_w),
                start_new_session=True,
                preexec_fn=set_limits,
            )
        os.close(to_worker_r)
        os.close(from_worker_w)
        self.to_worker, self.from_worker = to_worker_w, from_worker_r
        self.reader = protocol.Reader(from_worker_r)
        self.generation += 1
        init = {
            "op": "init",
            "root": str(self.workdir),
            "package": "submission",
            "forbidden_modules": self.submission.forbidden_modules,
            "forbidden_attributes": self.submission.forbidden_attributes,
            "preload": self.submission.preload,
            "recursion_limit": self.limits.recursion_limit,
        }
        try:
            self._exchange(init, [], self.limits.import_seconds, "starting the worker")
            reply = self._exchange(
                {"op": "import", "module": self.submission.module, "args": [], "kwargs": {"d": {}}},
                [],
                self.limits.import_seconds,
                f"importing {self.submission.module}.py",
            )
        except WorkerFault as fault:
            self.import_error = ImportFailed(f"your module could not be imported: {fault}")
            raise self.import_error from None
        if not reply.get("ok"):
            error = StudentError(reply.get("error", {}), "importing your module")
            self.import_error = ImportFailed(_describe_import_error(error))
            self._kill()
            raise self.import_error
        self.module_handle = reply["value"]["h"]

    def _kill(self) -> None:
        """SIGKILL the worker, its process group, its descendants and orphans re-parented to us."""
        if self.process is None:
            return
        pid = self.process.pid
        self.peak_memory = max(self.peak_memory, _tree_peak(pid))
        for victim in [pid, *_descendants(pid)]:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for fd in (self.to_worker, self.from_worker):
            try:
                os.close(fd)
            except OSError:
                pass
        self.process = None
        self._reap_orphans()

    def _reap_orphans(self) -> None:
        for _ in range(20):
            orphans = [c for c in _children_of(os.getpid()) if c not in self.preexisting_children]
            if not orphans:
                return
            for child in orphans:
                for victim in [child, *_descendants(child)]:
                    try:
                        os.kill(victim, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    os.waitpid(child, 0)
                except ChildProcessError:
                    pass

    # checks ---------------------------------------------------------------
    def begin_check(self, seconds: float | None = None, long_calls: bool = False) -> None:
        """`long_calls`: one call may take the whole check's time (the FULL=1 tier: a training
        run is one probe call), not only Limits.call_seconds."""
        self.check_deadline = time.monotonic() + (seconds or self.limits.check_seconds)
        self.call_limit = max(self.limits.call_seconds, seconds or 0) if long_calls else None
        self.check_fault = None
        self.violations = []
        self.observed = []

    def end_check(self) -> None:
        self.check_deadline = None
        self.call_limit = None
        self.check_fault = None

    # calls ----------------------------------------------------------------
    def module(self) -> RemoteRef:
        self._ensure_worker()
        return RemoteRef(self, None, (), None, "module")  # survives respawns: always re-imported

    def _ensure_worker(self) -> None:
        if self.import_error is not None:
            raise self.import_error
        if self.process is None:
            self._spawn()

    def request(self, header: dict, what: str) -> Any:
        """Send one request, decode its value; raise StudentError, WorkerFault or ImportFailed."""
        if self.check_fault is not None:
            raise self.check_fault  # a check that hung once is not run again and again
        if what in self.faulted:
            earlier = self.faulted[what]
            raise type(earlier)(f"not run again: earlier, {earlier}")
        self._ensure_worker()  # before encoding: handles are checked against this generation
        now = time.monotonic()
        limit = self.call_limit or self.limits.call_seconds
        seconds = limit
        if self.check_deadline is not None:
            seconds = max(0.0, min(seconds, self.check_deadline - now))
        own_limit = seconds >= limit  # a hang here is this call's own
        args, buffers = protocol.encode(header.pop("values", ([], {})), self._check_handle)
        header["args"], header["kwargs"] = args["t"][0], args["t"][1]
        header["cap"], expected = self._cap_for(header, buffers)
        self.calls += 1
        try:
            reply = self._exchange(header, buffers, seconds, what)
        except protocol.ReplyTooLarge as big:
            reply = {"ok": False, "oversized": {"bytes": big.size, "arrays": _arrays_of(big)}}
        except WorkerFault as fault:
            if self.check_deadline is not None:
                self.check_fault = fault
            if own_limit or isinstance(fault, WorkerCrashed):
                self.faulted[what] = fault
            raise
        self.warnings = [str(w) for w in reply.get("warnings", [])][:5]
        self.violations += [str(v)[:300] for v in reply.get("violations", [])][:5]
        self.observed += _observations(reply)
        if reply.get("oversized"):
            error = _oversized(reply["oversized"], header, expected, what)
            if self.check_deadline is not None:
                self.check_fault = error  # the rest of the check would only ask again
            raise error
        if not reply.get("ok"):
            error = StudentError(reply.get("error", {}), what)
            if error.not_implemented and self.check_deadline is not None:
                self.check_fault = error
            raise error
        try:
            return protocol.decode(reply.get("value"), self._buffers, self._make_ref)
        except protocol.ProtocolError as exc:
            raise WorkerCrashed(f"the worker sent a malformed value while {what}: {exc}") from None

    def _cap_for(self, header: dict, buffers: list) -> tuple[int, str | None]:
        """The reply cap of one call (reply_limit's, else derived from the inputs' size)."""
        if self.reply_cap is not None:
            return self.reply_cap
        inputs = protocol.value_size(buffers) + len(str(header.get("args", "")))
        return min(REPLY_CEILING, max(REPLY_FLOOR, REPLY_FACTOR * inputs)), None

    def _exchange(self, header: dict, buffers: list, seconds: float, what: str) -> dict:
        """One request and its reply; raises protocol.ReplyTooLarge (the worker killed: its
        reply is unread) when the reply would pass the request's cap."""
        try:
            protocol.send(self.to_worker, header, buffers)
            reply, self._buffers = self.reader.receive(
                time.monotonic() + seconds, header.get("cap", REPLY_FLOOR), self._watch
            )
            if not isinstance(reply, dict):
                raise protocol.ProtocolError("reply is not an object")
            return reply
        except protocol.ReplyTooLarge:
            self._kill()
            raise
        except TimeoutError:
            self._kill()
            raise WorkerTimeout(f"timed out after {seconds:.0f} s while {what}") from None
        except MemoryExceeded as exc:
            self._kill()
            raise MemoryExceeded(
                f"your code used {exc} of memory while {what}, more than the "
                f"{self.limits.memory_bytes / MiB:.0f} MiB the grader allows it; it was stopped"
            ) from None
        except (EOFError, BrokenPipeError, OSError) as exc:
            status = self._exit_status()
            self._kill()
            raise WorkerCrashed(f"your code crashed the worker while {what} ({status})") from exc
        except (protocol.ProtocolError, ValueError) as exc:
            self._kill()
            raise WorkerCrashed(f"the worker's reply was garbled while {what}: {exc}") from None

    def _watch(self) -> None:
        """The memory watchdog, called while the judge waits for a reply."""
        if self.process is None:
            return
        resident = _tree_resident(self.process.pid)
        self.peak_memory = max(self.peak_memory, resident)
        if resident > self.limits.memory_bytes:
            raise MemoryExceeded(_size(resident))

    def _exit_status(self) -> str:
        if self.process is None:
            return "no worker"
        try:
            code = self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return "the worker closed its channel"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}: sys.exit() or os._exit() in your code?"

    def _check_handle(self, obj: Any) -> protocol.Handle:
        if not isinstance(obj, RemoteRef):
            raise TypeError(f"cannot send a {type(obj).__name__} to the worker")
        if obj._generation not in (None, self.generation):
            raise WorkerCrashed(f"{obj._describe()} was lost when the worker restarted")
        return obj._handle()

    def _make_ref(self, id: int, path: tuple[str, ...], type_name: str) -> RemoteRef:
        return RemoteRef(self, id, path, self.generation, type_name)

    def output_tail(self, limit: int = 2000) -> str:
        """The end of what the submission printed (for diagnostics only; never parsed)."""
        try:
            data = self.log_path.read_bytes() if self.log_path else b""
        except OSError:
            return ""
        return data[-limit:].decode(errors="replace")

    def output_mark(self) -> int:
        """Where the submission's output stands now (a byte offset into its log)."""
        try:
            return self.log_path.stat().st_size if self.log_path else 0
        except OSError:
            return 0

    def output_since(self, mark: int, lines: int = OUTPUT_LINES) -> str:
        """The last `lines` lines the submission printed after `mark` (never parsed), and a
        last line naming the output limit when the log reached it."""
        try:
            with open(self.log_path, "rb") as log:
                size = log.seek(0, os.SEEK_END)
                log.seek(max(mark, size - OUTPUT_TAIL_BYTES))
                data = log.read()
        except (OSError, TypeError):
            return ""
        text = data.decode(errors="replace").splitlines()[-lines:]
        if mark < self.limits.output_bytes <= size:  # the limit was reached during this check
            text.append(output_limit_message(self.limits.output_bytes))
        return "\n".join(line[:300] for line in text)


def _observations(reply: dict) -> list[dict]:
    """The worker's report of what a call did to its arguments (grader/worker/watch.py), as
    {"what": "changed" | "aliased", "call", "arg", "output"} with plain strings only."""
    found = []
    for what in ("changed", "aliased"):
        entries = reply.get(what)
        if not isinstance(entries, list):
            continue
        for entry in entries[:8]:
            if isinstance(entry, dict):
                found.append(
                    {
                        "what": what,
                        **{k: str(entry.get(k, ""))[:120] for k in ("call", "arg", "output")},
                    }
                )
    return found


PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree_resident(pid: int) -> int:
    """Resident bytes of `pid` and its descendants (their shared pages counted once each)."""
    total = 0
    for member in [pid, *_descendants(pid)]:
        try:
            with open(f"/proc/{member}/statm") as fh:
                total += int(fh.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            pass
    return total


def _tree_peak(pid: int) -> int:
    """The sum of the peak resident sets (VmHWM) of `pid` and its descendants."""
    total = 0
    for member in [pid, *_descendants(pid)]:
        try:
            with open(f"/proc/{member}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) * 1024
        except (OSError, IndexError, ValueError):
            pass
    return total


def _size(n: int) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GiB"
    if n >= MiB:
        return f"{n / MiB:.0f} MiB"
    return f"{n / 1024:.0f} KiB"


def _shape(shape) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _arrays_of(big: protocol.ReplyTooLarge) -> list:
    header = big.header if isinstance(big.header, dict) else {}
    return [[list(shape), dtype] for shape, dtype in protocol.arrays_in(header.get("value"))]


def _oversized(info: Any, header: dict, expected: str | None, what: str) -> StudentError:
    """'your relu returned an array of shape (14000, 14000) float64 (1.5 GiB), expected (3, 4)'."""
    info = info if isinstance(info, dict) else {}
    size = info.get("bytes") if type(info.get("bytes")) is int else 0
    arrays = [a for a in info.get("arrays", []) if isinstance(a, list) and len(a) == 2][:3]
    path = header.get("p") or []
    if header.get("op") == "call" and path:
        subject = f"your {str(path[-1])[:60]} returned"
    else:
        subject = f"your code, while {what}, returned"
    if arrays and all(isinstance(a[0], list) for a in arrays):
        shape, dtype = arrays[0]
        value = f"an array of shape {_shape(shape)} {str(dtype)[:12]} ({_size(size)})"
        if len(arrays) > 1:
            value += f" among {len(arrays) - 1} more"
    else:
        value = f"a value of {_size(size)}"
    if expected is None:
        inputs = [_shape(s) for s, _ in protocol.arrays_in(header.get("args"))]
        given = f" for inputs of shape {', '.join(inputs)}" if inputs else ""
        tail = f"{given}: more than this check accepts ({_size(header.get('cap') or 0)})"
    else:
        tail = f", expected {expected}"
    message = f"{subject} {value}{tail}. Is a broadcast or an outer product making it too big?"
    return StudentError({"type": "ReplyTooLarge", "message": message, "oversized": True}, what)


@contextmanager
def reply_limit(ref: RemoteRef, like: Any = None, nbytes: int | None = None):
    """Within the block, replies to `ref`'s session are capped by what the check expects:
    `nbytes`, or 4× the size of `like` (an array, or a shape of float64) with a 64 KiB floor."""
    session = ref._session
    shape = tuple(like.shape) if hasattr(like, "shape") else tuple(like or ())
    itemsize = getattr(getattr(like, "dtype", None), "itemsize", 8)
    if nbytes is None:
        nbytes = max(64 << 10, 4 * itemsize * int(np.prod(shape)))
    previous = session.reply_cap
    session.reply_cap = (int(nbytes), _shape(shape) if like is not None else None)
    try:
        yield
    finally:
        session.reply_cap = previous


def _describe_import_error(error: StudentError) -> str:
    where = f" at {error.where[-1]}" if error.where else ""
    return f"your module could not be imported: {error.type}: {error.message}{where}"


class RemoteRef:
    """A reference to an object in the worker; attribute access builds a path, a call runs it."""

    __slots__ = ("_session", "_id", "_path", "_generation", "_type")

    def __init__(
        self,
        session: Session,
        id: int,
        path: tuple[str, ...],
        generation: int,
        type_name: str = "object",
    ):
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_id", id)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_generation", generation)
        object.__setattr__(self, "_type", type_name)

    def __getattr__(self, name: str) -> RemoteRef:
        if name.startswith("__"):
            raise AttributeError(name)
        return RemoteRef(self._session, self._id, (*self._path, name), self._generation, name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._request(
            {"op": "setattr", "p": [*self._path, name]},
            (value,),
            {},
            f"setting {self._describe()}.{name}",
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._request(
            {"op": "call", "p": list(self._path)}, args, kwargs, f"calling {self._describe()}(…)"
        )

    def _describe(self) -> str:
        return ".".join(self._path) or self._type

    def _request(self, header: dict, args: tuple, kwargs: dict, what: str) -> Any:
        session = self._session
        session._ensure_worker()
        if self._generation not in (None, session.generation):
            raise WorkerCrashed(f"{self._describe()} was lost when the worker restarted")
        header["h"] = self._handle().id
        header["values"] = (list(args), dict(kwargs))
        return session.request(header, what)

    def _handle(self) -> protocol.Handle:
        id = self._session.module_handle if self._id is None else self._id
        return protocol.Handle(id, self._path, self._type)

    def __repr__(self) -> str:
        return f"<remote {self._describe()}>"

    def __bool__(self) -> bool:
        raise TypeError("a RemoteRef has no truth value in the judge: fetch() it first")

    # operators run in the worker: a student's Tensor gets its own __add__ etc.
    def _op(self, name: str, *args: Any) -> Any:
        return self._session_op(name, args)

    def _session_op(self, name: str, args: tuple) -> Any:
        session = self._session
        return session.request(
            {"op": "operator", "name": name, "h": 0, "values": (list(args), {})},
            f"applying {name} to {self._describe()}",
        )


def _binary(name: str, reflected: bool = False):
    if reflected:
        return lambda self, other: self._session_op(name, (other, self))
    return lambda self, other: self._session_op(name, (self, other))


for _name in ("add", "sub", "mul", "truediv", "pow", "matmul", "lt", "le", "gt", "ge"):
    setattr(RemoteRef, f"__{_name}__", _binary(_name))
for _name in ("add", "sub", "mul", "truediv", "pow", "matmul"):
    setattr(RemoteRef, f"__r{_name}__", _binary(_name, reflected=True))
RemoteRef.__neg__ = lambda self: self._session_op("neg", (self,))
RemoteRef.__getitem__ = lambda self, key: self._session_op("getitem", (self, key))


def fetch(ref: Any) -> Any:
    """The value of a remote attribute as a plain value (arrays, numbers, handles for the rest)."""
    if not isinstance(ref, RemoteRef):
        return ref
    return ref._request(
        {"op": "getattr", "p": list(ref._path)}, (), {}, f"reading {ref._describe()}"
    )


def run_probe(ref: RemoteRef, name: str, *args: Any, **kwargs: Any) -> Any:
    """Run trusted code from grader/probes next to the student's objects; returns plain values."""
    session = ref._session
    session._ensure_worker()
    return session.request(
        {"op": "probe", "name": name, "h": 0, "values": (list(args), kwargs)},
        f"running the {name} probe",
    )


def operator_call(ref: RemoteRef, name: str, *args: Any) -> Any:
    """Apply a whitelisted builtin (len, float, type_name, isinstance_of …) in the worker."""
    return ref._session_op(name, args)
