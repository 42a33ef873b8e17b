"""Generate mutants mechanically from the SOLUTION regions of a reference solution.

Each operator below turns one node of the solution's syntax tree into a mistake a student could
make; the change is applied as a text edit to the original source, so a mutant differs from the
solution in exactly the characters it mutates (its diff is one line or one statement). Only code
strictly inside `# BEGIN SOLUTION` … `# END SOLUTION` is mutated: that is what a student writes.
A region belongs to an exercise through the top-level symbol that encloses it (the registry's
`symbols`); regions in helpers no exercise owns are not mutated.

Operators (the name is part of a mutant's id):
    arith     + ↔ −, × ↔ ÷, // → /, ** → ×, @ → ×, and the same in augmented assignments
    compare   < ↔ <=, > ↔ >=, == ↔ !=, is ↔ is not, in ↔ not in
    logic     and ↔ or, `not x` → x, `-x` → x
    constant  an int or float constant ± 1, True ↔ False
    axis      the same, for a `dim=`/`axis=` argument or the positional dim of a tensor method
    slice     a non-constant slice bound ± 1
    kwarg     a keyword argument dropped (so its default applies)
    inplace   `t.op(…)` → `t.op_(…)` (torch), `y = x ∘ e` → `x ∘= e` for an argument x
    delete    a statement replaced by `pass` (not the function's final return)
    cast      a returned value cast to float32 or float64

A mutant's id, `<qualified function>/<operator>/<hash>`, is a hash of the function, the operator
and the text before and after, so it survives edits elsewhere in the file and reviewed lists keep
pointing at the same mutant.
"""

from __future__ import annotations

import ast
import bisect
import difflib
import hashlib
import io
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass

from grader.registry import Phase
from grader.stubgen import find_regions, without_level_markers

OPERATORS = (
    "arith",
    "compare",
    "logic",
    "constant",
    "axis",
    "slice",
    "kwarg",
    "inplace",
    "delete",
    "cast",
)
ARITH = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Pow: ast.Mult,
    ast.MatMult: ast.Mult,
}
SYMBOL = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Pow: "**",
    ast.MatMult: "@",
    ast.Mod: "%",
}
COMPARE = {
    ast.Lt: "<=",
    ast.LtE: "<",
    ast.Gt: ">=",
    ast.GtE: ">",
    ast.Eq: "!=",
    ast.NotEq: "==",
    ast.Is: "is not",
    ast.IsNot: "is",
    ast.In: "not in",
    ast.NotIn: "in",
}
AXIS_KEYWORDS = {"dim", "axis"}
AXIS_METHODS = {
    "sum", "mean", "max", "min", "amax", "amin", "argmax", "argmin", "softmax", "log_softmax",
    "logsumexp", "cumsum", "prod", "std", "var", "norm", "chunk", "split", "unsqueeze",
    "squeeze", "transpose", "flip", "cat", "stack", "concatenate", "expand_dims", "all", "any",
    "size",
}  # fmt: skip
SCALAR_ANNOTATIONS = {"int", "float", "bool", "str"}
NUMPY_CASTS = ('.astype("float32")', '.astype("float64")')
TORCH_CASTS = (".float()", ".double()")


@dataclass(frozen=True)
class Mutant:
    id: str
    exercise: str
    function: str  # qualified name of the enclosing function, e.g. "RNNCell.forward"
    operator: str
    line: int  # 1-based line of the change in the solution
    start: int  # character offsets of the replaced text in the solution
    end: int
    text: str  # what replaces it

    def apply(self, source: str) -> str:
        return source[: self.start] + self.text + source[self.end :]

    def diff(self, source: str, context: int = 1) -> str:
        """The unified diff of the solution against this mutant, a few lines of context."""
        before = source.splitlines(keepends=True)
        after = self.apply(source).splitlines(keepends=True)
        lines = difflib.unified_diff(before, after, n=context, lineterm="")
        return "".join(line if line.endswith("\n") else line + "\n" for line in list(lines)[2:])

    def change(self, source: str) -> str:
        """One line for humans: `line 47: y = a + b → y = a - b` (the changed lines, joined)."""
        first = source.rfind("\n", 0, self.start) + 1
        last = source.find("\n", self.end)
        last = len(source) if last < 0 else last
        old = " ".join(source[first:last].split())
        new = " ".join((source[first : self.start] + self.text + source[self.end : last]).split())
        return f"line {self.line}: {_clip(old)} → {_clip(new or '(nothing)')}"


def _clip(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Source:
    """Positions in a source text: ast's (line, UTF-8 byte column) ↔ character offsets."""

    def __init__(self, source: str):
        self.text = source
        self.lines = source.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))
        self.tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
        self.token_starts = [self.char_offset(*t.start) for t in self.tokens]

    def offset(self, line: int, byte_col: int) -> int:
        text = self.lines[line - 1]
        return self.starts[line - 1] + len(text.encode()[:byte_col].decode(errors="replace"))

    def char_offset(self, line: int, col: int) -> int:
        return self.starts[line - 1] + col

    def span(self, node: ast.AST) -> tuple[int, int]:
        return (
            self.offset(node.lineno, node.col_offset),
            self.offset(node.end_lineno, node.end_col_offset),
        )

    def operator_token(self, after: int, before: int, symbol: str) -> tuple[int, int] | None:
        """The span of the first token spelling `symbol` between two offsets."""
        words = symbol.split()
        for index in range(bisect.bisect_left(self.token_starts, after), len(self.tokens)):
            start = self.token_starts[index]
            if start >= before:
                break
            run = self.tokens[index : index + len(words)]
            if [t.string for t in run] == words:
                return start, self.char_offset(*run[-1].end)
        return None


class _Generator(ast.NodeVisitor):
    def __init__(self, phase: Phase, source: str):
        self.phase = phase
        self.src = _Source(source)
        lines = source.splitlines()
        # lines strictly inside a region (1-based): the markers themselves are comments
        self.inside = {n for r in find_regions(lines) for n in range(r.begin + 2, r.end + 1)}
        self.stack: list[str] = []
        self.arguments: list[dict[str, ast.arg]] = []
        self.found: list[tuple[str, str, str, int, int, int, str, tuple[int, int]]] = []
        self.function_span = (0, 0)  # the outermost function around the node being visited
        self.last_returns: set[int] = set()
        self.axes: set[int] = set()  # constants that are a dim/axis argument

    # where we are ------------------------------------------------------------
    def _within(self, node: ast.AST) -> bool:
        return (
            bool(self.stack)
            and hasattr(node, "lineno")
            and node.lineno in self.inside
            and node.end_lineno in self.inside
        )

    def _exercise(self) -> str | None:
        owner = self.phase.owner_of(self.stack[0]) if self.stack else None
        return owner.id if owner else None

    def _emit(self, operator: str, node: ast.AST, start: int, end: int, text: str) -> None:
        exercise = self._exercise()
        if exercise is None or self.src.text[start:end] == text:
            return
        self.found.append(
            (exercise, ".".join(self.stack), operator, node.lineno, start, end, text,
             self.function_span)
        )  # fmt: skip

    def _text(self, node: ast.AST) -> str:
        start, end = self.src.span(node)
        return self.src.text[start:end]

    def _replace(self, operator: str, node: ast.AST, text: str) -> None:
        start, end = self.src.span(node)
        self._emit(operator, node, start, end, text)

    # scopes --------------------------------------------------------------------
    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.stack.append(node.name)
        for statement in node.body:
            self.visit(statement)
        self.stack.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        outermost = len(self.arguments) == 0
        if outermost:
            self.function_span = (self.src.starts[node.lineno - 1], self.src.span(node)[1])
        self.stack.append(node.name)
        every = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        self.arguments.append({a.arg: a for a in every})
        if node.body and isinstance(node.body[-1], ast.Return):
            self.last_returns.add(id(node.body[-1]))
        for statement in node.body:
            self.visit(statement)
        self.arguments.pop()
        self.stack.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.generic_visit(node)

    # statements ----------------------------------------------------------------
    def generic_visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.stmt) and self._within(node):
            self._delete(node)
        super().generic_visit(node)

    def _delete(self, node: ast.stmt) -> None:
        if (
            isinstance(node, (ast.Pass, ast.FunctionDef, ast.ClassDef))
            or id(node) in self.last_returns
        ):
            return
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            return  # a docstring
        if isinstance(node, ast.Expr) and _is_super_init(node.value):
            return  # nn.Module refuses to work at once: a mutant no one would write
        self._replace("delete", node, "pass")

    def visit_Assign(self, node: ast.Assign) -> None:
        if self._within(node):
            self._inplace_assign(node)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if self._within(node) and type(node.op) in ARITH:
            start = self.src.span(node.target)[1]
            end = self.src.span(node.value)[0]
            token = self.src.operator_token(start, end, SYMBOL[type(node.op)] + "=")
            if token:
                self._emit("arith", node, *token, SYMBOL[ARITH[type(node.op)]] + "=")
        self.generic_visit(node)

    def visit_Return(self, node: ast.Return) -> None:
        if self._within(node) and node.value is not None:
            self._cast(node.value)
        self.generic_visit(node)

    # expressions ---------------------------------------------------------------
    def visit_BinOp(self, node: ast.BinOp) -> None:
        if self._within(node) and type(node.op) in ARITH:
            start, end = self.src.span(node.left)[1], self.src.span(node.right)[0]
            token = self.src.operator_token(start, end, SYMBOL[type(node.op)])
            if token:
                self._emit("arith", node, *token, SYMBOL[ARITH[type(node.op)]])
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        if self._within(node):
            operands = [node.left, *node.comparators]
            for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
                symbol = _compare_symbol(op)
                start, end = self.src.span(left)[1], self.src.span(right)[0]
                token = self.src.operator_token(start, end, symbol)
                if token:
                    self._emit("compare", node, *token, COMPARE[type(op)])
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        if self._within(node):
            symbol, other = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
            for left, right in zip(node.values, node.values[1:], strict=False):
                start, end = self.src.span(left)[1], self.src.span(right)[0]
                token = self.src.operator_token(start, end, symbol)
                if token:
                    self._emit("logic", node, *token, other)
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if self._within(node) and isinstance(node.op, (ast.Not, ast.USub)):
            if not (isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)):
                start = self.src.span(node)[0]
                end = self.src.span(node.operand)[0]
                self._emit("logic", node, start, end, "")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if self._within(node):
            self._constant(node, "axis" if id(node) in self.axes else "constant")

    def _constant(self, node: ast.Constant, operator: str) -> None:
        value = node.value
        if isinstance(value, bool):
            self._replace(operator, node, repr(not value))
        elif isinstance(value, (int, float)):
            for new in (value + 1, value - 1):
                self._replace(operator, node, f"({new!r})" if new < 0 else repr(new))

    def visit_Call(self, node: ast.Call) -> None:
        if self._within(node):
            self._drop_keywords(node)
            self._inplace_method(node)
            dims = [k.value for k in node.keywords if k.arg in AXIS_KEYWORDS]
            if isinstance(node.func, ast.Attribute) and node.func.attr in AXIS_METHODS:
                dims += node.args
            for value in dims:
                value = value.operand if _is_negative_constant(value) else value
                if isinstance(value, ast.Constant) and type(value.value) is int:
                    self.axes.add(id(value))
        self.generic_visit(node)

    def visit_Slice(self, node: ast.Slice) -> None:
        if self._within(node):
            for bound in (node.lower, node.upper):
                if bound is not None and not isinstance(bound, ast.Constant):
                    if _is_negative_constant(bound):
                        continue
                    text = self._text(bound)
                    for sign in ("+", "-"):
                        self._replace("slice", bound, f"({text} {sign} 1)")
        self.generic_visit(node)

    # the operators that need more than one node ----------------------------------
    def _drop_keywords(self, node: ast.Call) -> None:
        for index, keyword in enumerate(node.keywords):
            if keyword.arg is None:
                continue  # **kwargs
            start = self.src.span(keyword)[0]
            end = self.src.span(keyword)[1]
            previous = [*node.args, *node.keywords[:index]]
            if previous:
                last = max(previous, key=lambda n: self.src.span(n)[1])
                start = self.src.span(last)[1]
            elif index + 1 < len(node.keywords):
                end = self.src.span(node.keywords[index + 1])[0]
            self._emit("kwarg", keyword, start, end, "")

    def _inplace_method(self, node: ast.Call) -> None:
        func = node.func
        if self.phase.numpy_only or not isinstance(func, ast.Attribute):
            return
        if func.attr.endswith("_") or not _torch_has_inplace(func.attr):
            return
        if isinstance(func.value, ast.Name) and func.value.id in {"torch", "F", "nn", "math"}:
            return
        end = self.src.span(func)[1]
        self._emit("inplace", func, end - len(func.attr), end, func.attr + "_")

    def _inplace_assign(self, node: ast.Assign) -> None:
        value = node.value
        if len(node.targets) != 1 or not isinstance(value, ast.BinOp):
            return
        if type(value.op) not in SYMBOL or not isinstance(value.left, ast.Name):
            return
        name = value.left.id
        argument = self.arguments[-1].get(name) if self.arguments else None
        if argument is None or name == "self" or _annotation(argument) in SCALAR_ANNOTATIONS:
            return
        target, right = self._text(node.targets[0]), self._text(value.right)
        text = f"{name} {SYMBOL[type(value.op)]}= {right}"
        if target != name:
            text += f"; {target} = {name}"
        self._replace("inplace", node, text)

    def _cast(self, value: ast.expr) -> None:
        if isinstance(value, ast.Tuple) and value.elts:
            value = value.elts[0]
        if isinstance(value, (ast.Constant, ast.Tuple, ast.List, ast.Dict, ast.JoinedStr)):
            return
        if isinstance(value, ast.Name) and value.id == "self":
            return
        if isinstance(value, ast.Call) and _not_an_array(value.func):
            return
        text = self._text(value)
        for cast in NUMPY_CASTS if self.phase.numpy_only else TORCH_CASTS:
            self._replace("cast", value, f"({text}){cast}")


def _not_an_array(func: ast.expr) -> bool:
    """A call that returns an object or a Python number (a class, float(), `.item()`)."""
    if isinstance(func, ast.Name):
        return func.id[:1].isupper() or func.id in {"float", "int", "bool", "len", "str"}
    return isinstance(func, ast.Attribute) and func.attr in {"item", "tolist"}


def _is_super_init(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "__init__"
        and isinstance(node.func.value, ast.Call)
        and isinstance(node.func.value.func, ast.Name)
        and node.func.value.func.id == "super"
    )


def _is_negative_constant(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
    )


def _compare_symbol(op: ast.cmpop) -> str:
    return {
        ast.Lt: "<",
        ast.LtE: "<=",
        ast.Gt: ">",
        ast.GtE: ">=",
        ast.Eq: "==",
        ast.NotEq: "!=",
        ast.Is: "is",
        ast.IsNot: "is not",
        ast.In: "in",
        ast.NotIn: "not in",
    }[type(op)]


def _annotation(argument: ast.arg) -> str | None:
    return ast.unparse(argument.annotation) if argument.annotation is not None else None


_INPLACE: dict[str, bool] = {}


def _torch_has_inplace(name: str) -> bool:
    if name not in _INPLACE:
        import torch

        _INPLACE[name] = callable(getattr(torch.Tensor, name + "_", None))
    return _INPLACE[name]


def generate(phase: Phase, source: str) -> list[Mutant]:
    """Every mutant of `source`'s SOLUTION regions, in source order; each one compiles."""
    generator = _Generator(phase, source)
    generator.visit(ast.parse(source))
    seen: dict[str, int] = {}
    sources: set[str] = set()
    mutants = []
    for exercise, function, operator, line, start, end, text, (first, last) in sorted(
        generator.found, key=lambda f: (f[4], f[5], f[2], f[6])
    ):
        mutated = source[first:start] + text + source[end:last]
        whole = hashlib.sha1((source[:start] + text + source[end:]).encode()).hexdigest()
        if whole in sources or not _compiles(mutated):
            continue
        sources.add(whole)
        # the replaced text less stub-level markers: marking a solution keeps its mutant ids
        basis = f"{function}|{operator}|{without_level_markers(source[start:end])}|{text}"
        seen[basis] = seen.get(basis, 0) + 1
        digest = hashlib.sha1(f"{basis}|{seen[basis]}".encode()).hexdigest()[:8]
        mutants.append(
            Mutant(f"{function}/{operator}/{digest}", exercise, function, operator, line,
                   start, end, text)
        )  # fmt: skip
    return mutants


def _compiles(function: str) -> bool:
    """Whether a mutated function (a method keeps its indentation) still compiles."""
    if function[:1].isspace():
        function = "class _:\n" + function
    try:
        compile(function, "<mutant>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def by_exercise(mutants: list[Mutant]) -> Iterator[tuple[str, list[Mutant]]]:
    groups: dict[str, list[Mutant]] = {}
    for mutant in mutants:
        groups.setdefault(mutant.exercise, []).append(mutant)
    yield from groups.items()
