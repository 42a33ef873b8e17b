"""Choosing and building the worker's isolation: the worker sees only its submission (SPEC §4).

Inside the sandbox the worker can read its private directory (the submission, the student's
earlier phase modules, the worker and probe code), the system's /usr and the Python it runs
(the interpreter's prefix and the virtual environment, both read-only); it can write only its
private directory and has no network. It cannot see the project (solutions/, grader/tests,
fixtures, mutants), other submissions or $HOME. The methods, strongest first:

- "bwrap"   — Linux namespaces (user, mount, pid, net, ipc, uts) built by bubblewrap.
- "unshare" — the same namespaces from util-linux `unshare`, which every Linux has; `enter`
  below (run by the worker before anything else) builds the new root, pivots into it and
  drops to an unprivileged uid (as root) or into a nested user namespace (as a user).
- "uid"     — running as root where namespaces are refused (a Docker container, as on
  Gradescope): the worker runs as the unprivileged uid 65534, its directory is given to that
  uid, and the grader's private folders lose their permissions for "other". Weaker: the worker
  can still read world-readable files and write world-writable places (/tmp), and has network.
  Where that uid cannot reach the Python it must run (pyenv under /root, mode 700), it runs a
  shadow of it instead (`shadow_python`): hard links to the interpreter and its standard
  library, and the virtual environment's packages, in a root-owned folder it may read — rather
  than opening /root to it, whose other contents (tool configurations) must stay private.
- "none"    — nothing above works (macOS, a non-root user without user namespaces): the
  worker runs as today, with one warning; `--require-sandbox` refuses instead.

Each method is tried once per process by starting a trivial sandboxed interpreter (`works`),
so a method that exists but fails here (a seccomp profile, no pivot_root) is skipped, not
discovered by a worker that cannot start. GRADSCHOOL_SANDBOX=<method> forces one (tests,
benchmarks). The worker copies this file beside its own code: it imports only the standard
library.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

METHODS = ("bwrap", "unshare", "uid", "none")
LABELS = {
    "bwrap": "Linux namespaces (bwrap)",
    "unshare": "Linux namespaces (unshare)",
    "uid": "unprivileged uid",
    "none": "none",
}
UNPRIVILEGED = 65534  # nobody
DEVICES = ("null", "zero", "full", "random", "urandom")
PRIVATE = ("solutions", "tests", "grader/tests", "grader/fixtures", "grader/mutants", ".git")


class SandboxUnavailable(ValueError):
    """--require-sandbox was given and no isolation works on this system."""


@dataclass(frozen=True)
class Isolation:
    method: str  # one of METHODS

    @property
    def label(self) -> str:
        return LABELS[self.method]

    @property
    def sandboxed(self) -> bool:
        return self.method != "none"

    def command(self, argv: list[str], workdir: Path) -> list[str]:
        """The command that runs `argv` (the worker's interpreter) inside this isolation."""
        if self.method == "bwrap":
            return [*_bwrap_prefix(workdir), "--", *argv]
        if self.method == "unshare":
            spec = {"root": str(workdir / ".root"), "ro": readable(), "rw": str(workdir)}
            spec["userns"] = os.geteuid() != 0
            flags = ["--mount", "--pid", "--net", "--ipc", "--uts", "--fork", "--kill-child"]
            if spec["userns"]:
                flags = ["--user", "--map-root-user", *flags]
            return ["unshare", *flags, "--", *argv, json.dumps(spec)]
        if self.method == "uid" and argv[:1] == [sys.executable]:
            python, library = shadow_python()
            if python != sys.executable:
                return ["/usr/bin/env", f"LD_LIBRARY_PATH={library}", python, *argv[1:]]
        return argv

    def preexec(self) -> None:
        """Runs in the child before exec (uid method: drop to the unprivileged uid)."""
        if self.method == "uid":
            _drop_to(UNPRIVILEGED)

    def prepare(self, workdir: Path, project: Path) -> None:
        """Make `workdir` usable by the worker's uid and the project unreadable to it."""
        if self.method == "uid":
            protect(project)
        if self.method in ("uid", "unshare") and os.geteuid() == 0:
            for path in (workdir, *workdir.rglob("*")):
                os.lchown(path, UNPRIVILEGED, UNPRIVILEGED)


def readable() -> list[str]:
    """What the worker may read: /usr (with /bin, /lib… where they are directories), and the
    Python it runs: the interpreter's prefix and the virtual environment."""
    paths = ["/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        top = Path("/") / name
        if top.is_dir() and not top.is_symlink():
            paths.append(str(top))
    for prefix in (sys.base_prefix, sys.prefix, sysconfig.get_paths()["purelib"]):
        real = os.path.realpath(prefix)
        if not any(real == p or real.startswith(p + "/") for p in paths):
            paths.append(real)
    return paths


def _bwrap_prefix(workdir: Path) -> list[str]:
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    args += ["--uid", str(UNPRIVILEGED), "--gid", str(UNPRIVILEGED)]
    for path in readable():
        args += ["--ro-bind", path, path]
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        top = Path("/") / name
        if top.is_symlink():
            args += ["--symlink", os.readlink(top), str(top)]
    args += ["--bind", str(workdir), str(workdir), "--proc", "/proc", "--dev", "/dev"]
    return [*args, "--remount-ro", "/", "--chdir", str(workdir)]


def protect(project: Path) -> None:
    """Take "other" permissions off the project's private folders (uid method)."""
    for name in PRIVATE:
        path = project / name
        if path.exists():
            os.chmod(path, path.stat().st_mode & ~0o007)
    home = Path.home()
    if home.exists() and home != Path("/"):
        os.chmod(home, home.stat().st_mode & ~0o007)


# ---------------------------------------------------------------- the uid method's Python

SHADOWS = Path("/var/cache/gradschool-python")  # root-owned: no submission can plant one


def reachable(path: str) -> bool:
    """Can "other" (the unprivileged uid) walk down to `path`?"""
    real = Path(os.path.realpath(path))
    return all(os.stat(p).st_mode & 0o001 for p in [*reversed(real.parents), real])


def shadow_python() -> tuple[str, str]:
    """(interpreter, its library folder) that the unprivileged uid can run: sys.executable where
    it can reach the base prefix and the environment's packages, else a shadow built once.

    The shadow holds hard links (copies across file systems) to the interpreter, its shared
    library and standard library, and a virtual environment over them whose site-packages is the
    real one when reachable, else linked too. Every folder is root's and read-only to others."""
    base, packages = sys.base_prefix, sysconfig.get_paths()["purelib"]
    if reachable(base) and reachable(packages):
        return sys.executable, str(Path(base) / "lib")
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    digest = hashlib.sha256(f"{sys.version}\0{base}\0{sys.prefix}".encode()).hexdigest()[:12]
    shadow = SHADOWS / f"{version}-{digest}"
    python = shadow / "venv" / "bin" / "python"
    if not (shadow / "complete").exists() or not _owned_by_root(shadow):
        _build_shadow(shadow, Path(base), Path(packages), version)
    return str(python), str(shadow / "base" / "lib")


def _build_shadow(shadow: Path, base: Path, packages: Path, version: str) -> None:
    building = Path(tempfile.mkdtemp(prefix=".building-", dir=_root_folder(SHADOWS)))
    os.chmod(building, 0o755)
    lib = base / "lib"
    tree = {base / "bin" / version: "base/bin/" + version}
    tree |= {p: f"base/lib/{p.name}" for p in lib.glob("libpython*")}
    for path in (lib / version).rglob("*"):
        if "site-packages" not in path.relative_to(lib / version).parts[:1]:
            tree[path] = f"base/lib/{version}/{path.relative_to(lib / version)}"
    venv = building / "venv"
    if not reachable(str(packages)):
        for path in packages.rglob("*"):
            tree[path] = f"venv/lib/{version}/site-packages/{path.relative_to(packages)}"
    for source, name in tree.items():
        target = building / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir() and not source.is_symlink():
            target.mkdir(exist_ok=True)
        elif source.is_file() and not source.is_symlink():
            _link_or_copy(source, target)
    site = venv / "lib" / version / "site-packages"
    if reachable(str(packages)):
        site.parent.mkdir(parents=True, exist_ok=True)
        site.symlink_to(packages)
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    (venv / "bin" / "python").symlink_to(shadow / "base" / "bin" / version)  # its final place
    home = f"home = {shadow / 'base' / 'bin'}\ninclude-system-site-packages = false\n"
    (venv / "pyvenv.cfg").write_text(home)
    os.chmod(venv / "pyvenv.cfg", 0o644)
    for path in [building, *building.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            os.chmod(path, 0o755)
    (building / "complete").touch()
    shutil.rmtree(shadow, ignore_errors=True)  # an unfinished one
    try:
        os.rename(building, shadow)
    except OSError:  # another grader built it meanwhile
        shutil.rmtree(building, ignore_errors=True)


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link when the file is readable by others already (its mode is shared, so it is
    never changed), else a copy made readable."""
    if source.stat().st_mode & 0o004:
        try:
            os.link(source, target)
            return
        except OSError:  # another file system
            pass
    shutil.copy2(source, target)
    os.chmod(target, 0o755 if source.stat().st_mode & 0o100 else 0o644)


def _root_folder(path: Path) -> Path:
    """`path` as a folder only root can write, refusing one that someone else could have made
    or could add to (its parents may be sticky, like /tmp; it may not)."""
    path.mkdir(mode=0o755, parents=True, exist_ok=True)
    for folder in [path, *path.parents]:
        info = folder.lstat()
        shared = info.st_mode & 0o022 and (folder == path or not info.st_mode & 0o1000)
        if info.st_uid != 0 or shared:
            raise OSError(f"{folder} is not root's alone: not building a Python in it")
    return path


def _owned_by_root(shadow: Path) -> bool:
    info = shadow.lstat()
    return info.st_uid == 0 and not info.st_mode & 0o022


def _drop_to(uid: int) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    _libc().prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS: no setuid binary gives it back


# ---------------------------------------------------------------- choosing

_WORKS: dict[str, bool] = {}
_WARNED = False


def works(method: str) -> bool:
    """Does `method` start an interpreter here that cannot see the project? (cached)"""
    if method == "none":
        return True
    if method not in _WORKS:
        _WORKS[method] = _try(method)
    return _WORKS[method]


def _try(method: str) -> bool:
    if method == "bwrap" and shutil.which("bwrap") is None:
        return False
    if method == "unshare" and (shutil.which("unshare") is None or not _pivot_root_number()):
        return False
    if method == "uid" and os.geteuid() != 0:
        return False
    isolation = Isolation(method)
    workdir = Path(tempfile.mkdtemp(prefix="gradschool-probe-"))
    try:
        shutil.copyfile(__file__, workdir / "sandbox.py")
        os.chmod(workdir, 0o755)
        isolation.prepare(workdir, Path(__file__).resolve().parent.parent)
        secret = Path(__file__).resolve().parent / "tests"
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]); import sandbox; "
            "sandbox.enter(sys.argv[3]) if len(sys.argv) > 3 else None; "
            "import os; print('visible' if os.access(sys.argv[2], os.R_OK) else 'hidden')"
        )
        argv = isolation.command(
            [sys.executable, "-I", "-c", code, str(workdir), str(secret)], workdir
        )
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=20,
            cwd=workdir,
            preexec_fn=isolation.preexec,
        )
        return done.returncode == 0 and done.stdout.strip() == "hidden"
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def choose(require: bool = False) -> Isolation:
    """The strongest isolation that works here (or GRADSCHOOL_SANDBOX's); warns once on none."""
    global _WARNED
    forced = os.environ.get("GRADSCHOOL_SANDBOX")
    if forced:
        if forced not in METHODS:
            raise ValueError(f"GRADSCHOOL_SANDBOX={forced!r}: expected one of {', '.join(METHODS)}")
        if not works(forced):
            raise SandboxUnavailable(f"GRADSCHOOL_SANDBOX={forced}, but it does not work here")
        method = forced
    else:
        method = next(m for m in METHODS if works(m))
    if method == "none" and require:
        raise SandboxUnavailable(
            "--require-sandbox: no isolation works here (no bwrap or unshare namespaces, and "
            "not running as root for an unprivileged uid); not grading"
        )
    if method == "none" and not _WARNED and not forced:
        _WARNED = True
        print(
            "warning: the grader's worker is not sandboxed on this system (no Linux namespaces, "
            "not root): student code can read and write whatever you can. Grade untrusted "
            "submissions on Linux, or pass --require-sandbox to refuse.",
            file=sys.stderr,
        )
    return Isolation(method)


# ---------------------------------------------------------------- inside the namespaces

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
CLONE_NEWUSER = 0x10000000


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _pivot_root_number() -> int | None:
    return {"x86_64": 155, "aarch64": 41}.get(os.uname().machine)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    libc = _libc()
    encode = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(
        libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data or None)),
        f"mount {target}",
    )


def _bind(source: str, target: str, flags: int) -> None:
    _mount(source, target, None, MS_BIND)
    _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_NOSUID | flags)


def enter(spec_json: str) -> None:
    """Build the worker's root and move into it (the "unshare" method; a no-op otherwise).

    Runs first in the worker, as root of fresh mount and pid namespaces: a tmpfs root gets
    read-only binds of `ro`, a writable bind of `rw` (the worker's directory), device nodes and
    a /proc of the new pid namespace; pivot_root into it, detach the old root, make the root
    read-only, then drop privileges so the worker cannot undo any of it.
    """
    try:
        spec = json.loads(spec_json)
    except ValueError:
        return
    if type(spec) is not dict or "root" not in spec:
        return
    root = spec["root"]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    os.makedirs(root, exist_ok=True)
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m")
    for path in spec["ro"]:
        os.makedirs(root + path, exist_ok=True)
        _bind(path, root + path, MS_RDONLY | MS_NODEV)
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        if os.path.islink("/" + name):
            os.symlink(os.readlink("/" + name), f"{root}/{name}")
    os.makedirs(root + spec["rw"], exist_ok=True)
    _bind(spec["rw"], root + spec["rw"], MS_NODEV)
    os.makedirs(f"{root}/dev", exist_ok=True)
    for device in DEVICES:
        open(f"{root}/dev/{device}", "w").close()
        _bind(f"/dev/{device}", f"{root}/dev/{device}", 0)  # device nodes: not nodev
    os.makedirs(f"{root}/proc", exist_ok=True)
    _mount("proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.makedirs(f"{root}/tmp", mode=0o1777, exist_ok=True)
    os.chdir(root)
    libc = _libc()
    _check(libc.syscall(_pivot_root_number(), b".", b"."), "pivot_root")
    _check(libc.umount2(b".", MNT_DETACH), "detaching the old root")
    os.chdir(spec["rw"])
    _mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    if spec.get("userns"):
        _leave_user_namespace(libc)
    else:
        _drop_to(UNPRIVILEGED)


def _leave_user_namespace(libc) -> None:
    """As a non-root user the namespaces' root is us: a nested user namespace owns nothing
    mounted, so nothing can be unmounted or remounted from inside it."""
    _check(libc.unshare(CLONE_NEWUSER), "unshare(CLONE_NEWUSER)")
    for name, text in (("setgroups", "deny"), ("uid_map", "0 0 1"), ("gid_map", "0 0 1")):
        with open(f"/proc/self/{name}", "w") as fh:
            fh.write(text)
    libc.prctl(38, 1, 0, 0, 0)
