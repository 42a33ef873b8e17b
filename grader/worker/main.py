"""The worker: the only process that imports and runs a submission.

It is started by grader.session in a private temporary directory, with this package (and the
grader's probes) copied beside the submission, and talks to the judge over two pipes. It keeps
student objects behind integer handles and sends back plain values (see protocol.py). It never
sees expected values, scores, solutions or tests.
"""

from __future__ import annotations

import errno
import importlib
import importlib.util
import linecache
import operator
import signal
import sys
import traceback
import warnings
from typing import Any

from . import guard, protocol, watch

OPERATORS = {
    name: getattr(operator, name)
    for name in (
        "add",
        "sub",
        "mul",
        "truediv",
        "floordiv",
        "mod",
        "pow",
        "matmul",
        "neg",
        "pos",
        "abs",
        "lt",
        "le",
        "gt",
        "ge",
        "eq",
        "ne",
        "getitem",
        "setitem",
        "contains",
        "invert",
    )
}
OPERATORS.update(
    len=len,
    float=float,
    int=int,
    type_name=lambda obj: type(obj).__name__,
    hasattr=hasattr,
    list=list,
    isinstance_of=lambda obj, name: any(cls.__name__ == name for cls in type(obj).__mro__),
)


class Worker:
    """Executes the judge's requests against the submission; usable in-process for benchmarks."""

    def __init__(self, root: str, package: str):
        self.root, self.package = root, package
        self.objects: dict[int, Any] = {}
        self.next_id = 1
        self.observed: dict = {}  # what the last call did to its arguments (watch.py)

    # handles ---------------------------------------------------------------
    def to_handle(self, obj: Any) -> int:
        self.objects[self.next_id] = obj
        self.next_id += 1
        return self.next_id - 1

    def from_handle(self, id: int, path: tuple[str, ...], type_name: str) -> Any:
        if id not in self.objects:
            raise protocol.ProtocolError(f"unknown handle {id}")
        obj = self.objects[id]
        for name in path:
            obj = getattr(obj, name)
        return obj

    # requests --------------------------------------------------------------
    def execute(self, request: dict, args: list, kwargs: dict) -> Any:
        op = request["op"]
        if op == "import":
            module = importlib.import_module(f"{self.package}.{request['module']}")
            return protocol.Handle(self.to_handle(module), (), "module")
        if op == "call":
            function = self.from_handle(request["h"], tuple(request["p"]), "")
            observer = watch.Watch(function, args, kwargs)
            result = function(*args, **kwargs)
            self.observed = observer.report(result)  # in-place changes and aliasing, for the judge
            return result
        if op == "getattr":
            return self.from_handle(request["h"], tuple(request["p"]), "")
        if op == "setattr":
            *path, name = request["p"]
            setattr(self.from_handle(request["h"], tuple(path), ""), name, args[0])
            return None
        if op == "operator":
            return OPERATORS[request["name"]](*args)
        if op == "probe":
            module_name, function = request["name"].rsplit(".", 1)
            probe = importlib.import_module(f"{__package__.rsplit('.', 1)[0]}.probes.{module_name}")
            return getattr(probe, function)(*args, **kwargs)
        if op == "release":
            for id in request["ids"]:
                self.objects.pop(id, None)
            return None
        if op == "reload":
            return self.reload(request["module"], args[0])
        raise protocol.ProtocolError(f"unknown operation {op!r}")

    def reload(self, module: str, source: str) -> protocol.Handle:
        """Replace the graded module by `source` (mutation analysis grades many variants of a
        solution in one worker). Earlier objects are dropped: they belong to the old module."""
        name = f"{self.package}.{module}"
        origin = f"{self.root}/{self.package}/{module}.py"
        spec = importlib.util.spec_from_loader(name, loader=None, origin=origin)
        fresh = importlib.util.module_from_spec(spec)
        fresh.__file__ = origin
        sys.modules[name] = fresh
        exec(compile(source, origin, "exec"), fresh.__dict__)
        self.objects.clear()
        return protocol.Handle(self.to_handle(fresh), (), "module")

    def handle(self, header: dict, buffers: list[bytes]) -> tuple[dict, list]:
        """One request in, one reply out; the student's exceptions become data."""
        guard.violations.clear()
        self.observed = {}
        try:
            args = protocol.decode(header.get("args", []), buffers, self.from_handle)
            kwargs = protocol.decode(header.get("kwargs", {"d": {}}), buffers, self.from_handle)
        except Exception as exc:  # a stale handle or a bad attribute path is the student's error
            return self.error_reply(exc), []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = self.execute(header, args, kwargs)
                tree, out = protocol.encode(result, self.to_handle)
                reply = {"ok": True, "value": tree, **self.observed}
            except BaseException as exc:  # noqa: BLE001 - the student may raise anything
                reply, out = self.error_reply(exc), []
        reply["warnings"] = [_safe_str(w.message)[:300] for w in caught[:5]]
        reply["violations"] = list(guard.violations)
        return reply, out

    def error_reply(self, exc: BaseException) -> dict:
        return {
            "ok": False,
            "error": {
                "type": type(exc).__name__[:80],
                "message": _safe_str(exc)[:2000],
                "where": self.student_traceback(exc),
                "not_implemented": isinstance(exc, NotImplementedError),
                "forbidden": isinstance(exc, guard.ForbiddenAPIError),
                "output_full": isinstance(exc, OSError) and exc.errno == errno.EFBIG,
            },
        }

    def student_traceback(self, exc: BaseException) -> list[str]:
        """The frames of the submission only, innermost last: 'file.py:12 in relu: y = ...'."""
        lines = []
        try:
            for frame in traceback.extract_tb(exc.__traceback__):
                if frame.filename.startswith(self.root) and "/_gradschool_" not in frame.filename:
                    name = frame.filename.rsplit("/", 1)[-1]
                    code = (frame.line or linecache.getline(frame.filename, frame.lineno)).strip()
                    lines.append(f"{name}:{frame.lineno} in {frame.name}: {code}"[:300])
        except Exception:  # noqa: BLE001 - a hostile exception may break traceback formatting
            return []
        return lines[-6:]


def _safe_str(obj: Any) -> str:
    try:
        return str(obj)
    except BaseException:  # noqa: BLE001
        return f"<unprintable {type(obj).__name__}>"


def scrub_import_path(root: str) -> None:
    """Leave the interpreter able to import the standard library, site-packages and `root` only.

    An editable install of the project registers finders and path entries that would make
    `import solutions` or `import grader` work here; they are removed.
    """
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    sys.path_hooks[:] = [h for h in sys.path_hooks if "editable" not in repr(h).lower()]
    sys.path[:] = [root] + [
        p for p in sys.path if p and ("site-packages" in p or "/lib/python" in p)
    ]
    sys.path_importer_cache.clear()


def main() -> None:
    fd_in, fd_out = int(sys.argv[1]), int(sys.argv[2])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an output flood fails a write, not the worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    reader = protocol.Reader(fd_in)
    header, _ = reader.receive()
    scrub_import_path(header["root"])
    guard.install(header["forbidden_modules"], header["forbidden_attributes"], header["preload"])
    sys.setrecursionlimit(header["recursion_limit"])
    worker = Worker(header["root"], header["package"])
    protocol.send(fd_out, {"ok": True, "ready": True}, [])
    while True:
        try:
            header, buffers = reader.receive()
        except (EOFError, OSError):
            return
        if header.get("op") == "bye":
            return
        reply, out = worker.handle(header, buffers)
        flush_output()  # the judge reads the output log after each check
        try:
            parts, size = protocol.frame(reply, out)
        except (ValueError, protocol.ProtocolError) as exc:  # e.g. NaN inside a header
            parts, size = protocol.frame(worker.error_reply(exc), [])
        cap = header.get("cap")
        if type(cap) is int and size > cap:  # the judge would refuse it: describe it instead
            parts, _ = protocol.frame(oversized_reply(reply, size), [])
        protocol.write(fd_out, parts)


def flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - a full log, or a stream the student replaced
            pass


def oversized_reply(reply: dict, size: int) -> dict:
    """A small reply standing for one larger than the judge's cap: its size and largest arrays."""
    arrays = [[list(shape), dtype] for shape, dtype in protocol.arrays_in(reply.get("value"))]
    return {
        "ok": False,
        "oversized": {"bytes": size, "arrays": arrays},
        "warnings": reply.get("warnings", []),
        "violations": reply.get("violations", []),
    }
