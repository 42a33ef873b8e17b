"""The static half of the forbidden-API rule: scan a submission's source, never run it.

Flags imports of forbidden modules, attribute chains that resolve to forbidden names through
any alias (`import torch.nn.functional as F; F.scaled_dot_product_attention`), and the
dynamic tricks that would hide them (`__import__`, `importlib`, `eval`/`exec`, `getattr` with
a forbidden name, `sys.modules`). A hit inside a function or class owned by an exercise costs
that exercise; a hit at module level or in an unowned helper costs every exercise.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from grader.registry import ALWAYS_FORBIDDEN, Phase

DYNAMIC_NAMES = {"__import__", "eval", "exec", "compile"}
ALWAYS_FORBIDDEN_MODULES = (*ALWAYS_FORBIDDEN, "importlib", "builtins", "ctypes")


@dataclass(frozen=True)
class Violation:
    line: int
    code: str
    name: str  # what was reached for
    exercise: str | None  # None: every exercise of the phase

    def describe(self) -> str:
        return f"line {self.line}: `{self.code}` uses {self.name}, which this phase forbids"


def _matches(name: str, forbidden: tuple[str, ...]) -> str | None:
    for entry in forbidden:
        if name == entry or name.startswith(entry + "."):
            return entry
    return None


class _Scanner(ast.NodeVisitor):
    def __init__(self, forbidden: tuple[str, ...]):
        self.forbidden = forbidden
        self.aliases: dict[str, str] = {}
        self.hits: list[tuple[int, str]] = []
        self.leaf_names = {entry.rsplit(".", 1)[-1] for entry in forbidden}

    def flag(self, node: ast.AST, name: str) -> None:
        self.hits.append((node.lineno, name))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if _matches(alias.name, self.forbidden):
                self.flag(node, alias.name)
            bound = alias.asname or alias.name.split(".")[0]
            self.aliases[bound] = alias.name if alias.asname else alias.name.split(".")[0]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:  # a relative import of the student's own earlier phases
            return
        for alias in node.names:
            full = f"{node.module}.{alias.name}"
            if _matches(node.module or "", self.forbidden) or _matches(full, self.forbidden):
                self.flag(node, full)
            self.aliases[alias.asname or alias.name] = full

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain, base = [node.attr], node.value
        while isinstance(base, ast.Attribute):
            chain.append(base.attr)
            base = base.value
        if isinstance(base, ast.Name) and base.id in self.aliases:
            full = ".".join([self.aliases[base.id], *reversed(chain)])
            if _matches(full, self.forbidden):
                self.flag(node, full)
                return
            if full.startswith("sys.modules"):
                self.flag(node, "sys.modules")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in DYNAMIC_NAMES:
            self.flag(node, f"{node.id}() (dynamic code or imports)")
        elif node.id in self.aliases and _matches(self.aliases[node.id], self.forbidden):
            self.flag(node, self.aliases[node.id])

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr", "hasattr"):
            if len(node.args) >= 2:
                name = node.args[1]
                if isinstance(name, ast.Constant) and isinstance(name.value, str):
                    if name.value in self.leaf_names or _matches(name.value, self.forbidden):
                        self.flag(node, f"getattr(…, {name.value!r})")
        self.generic_visit(node)


def scan(source: str, phase: Phase) -> list[Violation]:
    """Every forbidden use in `source`, attributed to exercises. A syntax error yields none
    (the import fails and says so)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return []
    forbidden = (*phase.forbidden, *ALWAYS_FORBIDDEN_MODULES)
    lines = source.splitlines()
    scanner = _Scanner(forbidden)
    violations = []
    for statement in tree.body:  # module order, so aliases are known before use
        before = len(scanner.hits)
        scanner.visit(statement)
        owner = None
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            exercise = phase.owner_of(statement.name)
            owner = exercise.id if exercise else None
        for line, name in scanner.hits[before:]:
            code = lines[line - 1].strip() if 0 < line <= len(lines) else ""
            violations.append(Violation(line, code[:160], name, owner))
    return violations
