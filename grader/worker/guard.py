"""The run-time half of the forbidden-API rule (the static half is grader/forbidden.py).

Blocks imports of forbidden modules and replaces forbidden attributes (e.g.
`torch.nn.functional.scaled_dot_product_attention`) with a stub that records the violation and
raises. A determined submission can undo this; the static scan in the judge is what it cannot.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import traceback

violations: list[str] = []


class ForbiddenAPIError(RuntimeError):
    """Raised where a submission reaches for an API its phase forbids."""


def _student_line() -> str:
    for frame in reversed(traceback.extract_stack()):
        if "/_gradschool_" not in frame.filename and "/submission/" in frame.filename:
            return (
                f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}: {(frame.line or '').strip()}"
            )
    return "(line unknown)"


class _BlockForbidden(importlib.abc.MetaPathFinder):
    def __init__(self, prefixes: list[str]):
        self.prefixes = prefixes

    def find_spec(self, fullname, path=None, target=None):
        if any(fullname == p or fullname.startswith(p + ".") for p in self.prefixes):
            where = _student_line()
            violations.append(f"import of {fullname} — {where}")
            raise ForbiddenAPIError(f"{fullname} is forbidden in this phase ({where})")
        return None


def _forbidden_stub(dotted: str):
    def forbidden(*args, **kwargs):
        where = _student_line()
        violations.append(f"{dotted} — {where}")
        raise ForbiddenAPIError(f"{dotted} is forbidden in this phase ({where})")

    return forbidden


def install(modules: list[str], attributes: list[str], preload: list[str]) -> None:
    """Import `preload` (e.g. torch) for trusted use, then block `modules` and stub `attributes`."""
    for name in preload:
        importlib.import_module(name)
    sys.meta_path.insert(0, _BlockForbidden(modules))
    for dotted in attributes:
        owner_name, attr = dotted.rsplit(".", 1)
        owner = sys.modules.get(owner_name)
        if owner is None and owner_name.rsplit(".", 1)[0] in sys.modules:
            owner = getattr(
                sys.modules[owner_name.rsplit(".", 1)[0]], owner_name.rsplit(".", 1)[1], None
            )
        # Only callables are replaced: a forbidden namespace (a module such as torch._VF, or
        # torch.ops) is used by the library's own code (Tensor.split calls torch._VF.split), so
        # the static scan alone covers it; list its dangerous functions one by one as well.
        if owner is not None and callable(getattr(owner, attr, None)):
            setattr(owner, attr, _forbidden_stub(dotted))
