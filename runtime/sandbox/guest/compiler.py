"""Layer (a) of docs/sandbox.md: source pre-checks, then RestrictedPython with a stricter policy.

The parser and RestrictedPython's (recursive) transformer are DoS surfaces, so this runs in
the worker, and every check that bounds their work (size, encoding, node count, depth) runs
before them. Every refusal becomes a :class:`CompileIssue` at the tenant's own line, and all
issues RestrictedPython finds are reported, not just the first.
"""

from __future__ import annotations

import ast
import codecs
import hashlib
import re
import sys
import warnings
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import version
from itertools import islice
from types import CodeType
from typing import Final, TypeVar

from RestrictedPython.compile import compile_restricted_exec
from RestrictedPython.transformer import IOPERATOR_TO_STR, RestrictingNodeTransformer

from runtime.sandbox.guest.guards import INLINE_CHECKS, INPLACE_OPERATORS
from runtime.sandbox.shared.contract import HANDLERS, CompileIssue, SandboxLimits, Trigger

__all__ = [
    "CompileFailed",
    "CompiledAction",
    "TenantPolicy",
    "check_action",
    "clear_compile_cache",
    "compile_action",
]

RESTRICTED_PYTHON_VERSION = version("RestrictedPython")
CACHE_SIZE = 256
_COOKIE = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
_UTF8_NAMES = frozenset({"utf-8", "utf8"})
_SINGLETONS = (ast.expr_context, ast.boolop, ast.operator, ast.unaryop, ast.cmpop)
_Node = TypeVar("_Node", bound=ast.AST)
_Visited = ast.AST | Iterable[ast.AST] | None
_LEAVES = frozenset(t for base in _SINGLETONS for t in base.__subclasses__())


class CompileFailed(Exception):
    """A script was refused; ``issues`` says where and why, in source order."""

    def __init__(self, issues: list[CompileIssue]) -> None:
        self.issues = issues
        first = issues[0] if issues else CompileIssue(message="refused")
        where = f"line {first.line}: " if first.line is not None else ""
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        super().__init__(f"{where}{first.message}{more}")


@dataclass(frozen=True, slots=True)
class CompiledAction:
    """A compiled tenant script: code to ``exec`` in fresh globals, plus what reports need."""

    code: CodeType
    name: str
    trigger: Trigger
    sha256: str
    source_lines: tuple[str, ...]

    @property
    def handler(self) -> str:
        """The function the trigger calls, e.g. ``on_execute_send_phone_message``."""
        return HANDLERS[self.trigger]

    @property
    def filename(self) -> str:
        """The code's file name, which tracebacks show: ``<action:NAME>``."""
        return self.code.co_filename


class _Located(str):
    """An RP error message that keeps the node's line and column (RP only keeps the line)."""

    line: int | None
    column: int | None

    def __new__(cls, message: str, line: int | None, column: int | None) -> _Located:
        located = super().__new__(cls, message)
        located.line, located.column = line, column
        return located


class TenantPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy, plus: no classes and no async (docs/sandbox.md, a)."""

    def error(self, node: ast.AST, info: str) -> None:
        """Record ``info`` with the node's line and 0-based column."""
        line = getattr(node, "lineno", None)
        self.errors.append(_Located(info, line, getattr(node, "col_offset", None)))

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        """Refuse classes: no ``__eq__``/str-subclass tricks, no Formatter subclassing."""
        self.error(node, "class definitions are not allowed in actions; use functions and dicts")
        return self.node_contents_visit(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        """Refuse ``async def``: handlers are plain functions and ``api`` calls block."""
        self.error(node, "async def is not allowed: write a plain def (api calls are blocking)")
        return self.node_contents_visit(node)

    def visit_Await(self, node: ast.Await) -> ast.AST:
        """Refuse ``await``."""
        self.error(node, "await is not allowed: api calls are blocking")
        return self.node_contents_visit(node)

    # The two hottest guards (a loop's ``total += x`` and ``items[i]``) behind an inline
    # exact-type check: for the types the guard would pass anyway the native operation runs
    # without a call (about 40 ns instead of 80 per operation); anything else still goes
    # through the guard, evaluated exactly as RestrictedPython emits it.

    def visit_AugAssign(self, node: ast.AugAssign) -> _Visited:
        """``if _type_(x) in _inplace_types_: x op= y`` ``else: x = _inplacevar_(op, x, y)``."""
        guarded = super().visit_AugAssign(node)
        target = node.target
        if not (
            isinstance(guarded, ast.Assign)
            and isinstance(target, ast.Name)
            and IOPERATOR_TO_STR.get(type(node.op)) in INPLACE_OPERATORS
            and _small(node.value, _MAX_INLINE_VALUE)
        ):
            return guarded
        # node.value (already transformed) is shared by both branches: compile() reads it
        # once per place it appears (so it is kept small), and only one branch runs.
        store = _at(ast.Name(target.id, ast.Store()), node)
        native = _at(ast.AugAssign(target=store, op=node.op, value=node.value), node)
        test = _exact_type_in(target.id, "_inplace_types_", node)
        return _at(ast.If(test=test, body=[native], orelse=[guarded]), node)

    def visit_Subscript(self, node: ast.Subscript) -> _Visited:
        """``name[key]``: ``name[key] if _type_(name) in _subscript_types_ else
        _getitem_(name, key)``; other subscripts as RestrictedPython emits them."""
        guarded = super().visit_Subscript(node)
        if not (
            isinstance(guarded, ast.Call)
            and isinstance(guarded.args[0], ast.Name)
            and _small(guarded.args[1], _MAX_INLINE_KEY)
        ):
            return guarded
        name = guarded.args[0].id
        load = _at(ast.Name(name, ast.Load()), node)
        native = _at(ast.Subscript(value=load, slice=guarded.args[1], ctx=ast.Load()), node)
        test = _exact_type_in(name, "_subscript_types_", node)
        return _at(ast.IfExp(test=test, body=native, orelse=guarded), node)


_MAX_INLINE_KEY: Final = 12
"""Nodes a subscript's key may have to be inlined: the key appears in both branches, so a key
holding another inlined subscript (about 20 nodes) is never copied again. Without this,
``a[a[a[...]]]`` would double at each level (a compile-time bomb)."""
_MAX_INLINE_VALUE: Final = 64
"""Nodes the value of ``x op= y`` may have to be inlined (it appears in both branches)."""


def _small(node: ast.AST, limit: int) -> bool:
    """Whether ``node``'s tree has at most ``limit`` nodes (stops counting past it)."""
    return sum(1 for _ in islice(ast.walk(node), limit + 1)) <= limit


def _exact_type_in(name: str, table: str, node: ast.AST) -> ast.expr:
    """``_type_(name) in table``: the guards' own exact-type test (hidden globals), at
    ``node``'s position."""
    assert table in INLINE_CHECKS
    func = _at(ast.Name("_type_", ast.Load()), node)
    call = _at(ast.Call(func=func, args=[_at(ast.Name(name, ast.Load()), node)], keywords=[]), node)
    tables = _at(ast.Name(table, ast.Load()), node)
    return _at(ast.Compare(left=call, ops=[ast.In()], comparators=[tables]), node)


def _at(new: _Node, old: ast.AST) -> _Node:
    """``new`` at ``old``'s position (tracebacks name the tenant's own line)."""
    return ast.copy_location(new, old)


def _issue(line: int | None, column: int | None, message: str) -> CompileIssue:
    return CompileIssue(line=line, column=column, message=message)


def _source_bytes(source: str | bytes, limits: SandboxLimits) -> bytes:
    """The UTF-8 bytes of ``source`` after the size check."""
    if type(source) is str:
        size = len(source) if source.isascii() else len(source.encode("utf-8", "surrogatepass"))
    elif type(source) is bytes:
        size = len(source)
    else:
        raise TypeError(f"source must be str or bytes, not {type(source).__name__}")
    if size > limits.max_source_bytes:
        message = f"source is {size} bytes, over the limit of {limits.max_source_bytes} bytes"
        raise CompileFailed([_issue(None, None, message)])
    if isinstance(source, bytes):
        return source
    try:
        return source.encode("utf-8")
    except UnicodeEncodeError as exc:
        issue = _issue(None, None, f"source is not UTF-8: lone surrogate at character {exc.start}")
    raise CompileFailed([issue])


def _decode(raw: bytes) -> str:
    """Strict UTF-8 text with no other coding cookie (PEP 263 looks at the first two lines)."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1)
        message = f"source is not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}"
        issue = _issue(line, column, message)
    else:
        for number, line_text in enumerate(text.split("\n", 2)[:2], start=1):
            match = _COOKIE.match(line_text)
            if match and match.group(1).lower().replace("_", "-") not in _UTF8_NAMES:
                message = f"coding {match.group(1)!r} is not allowed: actions are UTF-8"
                raise CompileFailed([_issue(number, match.start(1), message)])
        return text
    raise CompileFailed([issue])


def _parse(text: str, filename: str) -> ast.Module:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(text, filename, "exec")
    except SyntaxError as exc:
        column = exc.offset - 1 if exc.offset else None
        issue = _issue(exc.lineno, column, f"{type(exc).__name__}: {exc.msg}")
    except RecursionError:
        issue = _issue(None, None, "the parser ran out of stack: the code is nested too deeply")
    except MemoryError:
        issue = _issue(None, None, "the parser ran out of memory")
    except (ValueError, OverflowError) as exc:
        issue = _issue(None, None, f"cannot parse the source: {exc}")
    raise CompileFailed([issue])


def _check_size(tree: ast.Module, limits: SandboxLimits) -> None:
    """Iterative walk: bounded node count and depth before any recursive visitor runs."""
    stack: list[tuple[ast.AST, int, int]] = [(tree, 0, 1)]
    count = 0
    while stack:
        node, depth, line = stack.pop()
        line = getattr(node, "lineno", line)
        count += 1
        if count > limits.max_nodes:
            message = f"script has more than {limits.max_nodes} syntax nodes (at line {line})"
            raise CompileFailed([_issue(line, None, message)])
        if depth > limits.max_depth:
            message = f"code is nested more than {limits.max_depth} levels deep (at line {line})"
            raise CompileFailed([_issue(line, getattr(node, "col_offset", None), message)])
        for child in ast.iter_child_nodes(node):
            if type(child) not in _LEAVES:
                stack.append((child, depth + 1, line))


def _binds(stmt: ast.stmt, name: str) -> bool:
    if isinstance(stmt, ast.Assign):
        names = (n for target in stmt.targets for n in ast.walk(target))
        return any(type(n) is ast.Name and n.id == name for n in names)
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        return any((a.asname or a.name.partition(".")[0]) == name for a in stmt.names)
    return False


def _check_layout(tree: ast.Module, trigger: Trigger) -> list[CompileIssue]:
    """Top level holds only def/assignments/imports/docstring; the handler is a 2-arg def."""
    handler = HANDLERS[trigger]
    issues: list[CompileIssue] = []
    found = 0
    for index, stmt in enumerate(tree.body):
        line, column = stmt.lineno, stmt.col_offset
        if isinstance(stmt, ast.FunctionDef):
            if stmt.name == handler:
                found += 1
                args = stmt.args
                if len(args.posonlyargs) + len(args.args) != 2 or (
                    args.vararg or args.kwarg or args.kwonlyargs
                ):
                    message = f"{handler} must take exactly two positional parameters (event, api)"
                    issues.append(_issue(line, column, message))
        elif isinstance(stmt, ast.Assign | ast.Import | ast.ImportFrom):
            if _binds(stmt, handler):
                issues.append(_issue(line, column, f"{handler} must not be reassigned"))
        elif isinstance(stmt, ast.ClassDef | ast.AsyncFunctionDef):
            found += isinstance(stmt, ast.AsyncFunctionDef) and stmt.name == handler
        elif not (
            index == 0
            and type(stmt) is ast.Expr
            and type(stmt.value) is ast.Constant
            and type(stmt.value.value) is str
        ):
            kind = "expression" if type(stmt) is ast.Expr else type(stmt).__name__.lower()
            message = (
                f"a top-level {kind} statement is not allowed: the top level may only define"
                " functions, assign names, import and hold a docstring"
            )
            issues.append(_issue(line, column, message))
    if found == 0:
        message = f"the {trigger} handler `def {handler}(event, api):` is missing at the top level"
        issues.append(_issue(None, None, message))
    elif found > 1:
        issues.append(_issue(None, None, f"{handler} is defined more than once"))
    return issues


def _restricted(tree: ast.Module, filename: str) -> tuple[CodeType | None, list[CompileIssue]]:
    """Run RestrictedPython with :class:`TenantPolicy`; its errors become issues."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = compile_restricted_exec(tree, filename=filename, policy=TenantPolicy)
    except SyntaxError as exc:  # raised by compile() itself, e.g. 'break' outside loop
        column = exc.offset - 1 if exc.offset else None
        return None, [_issue(exc.lineno, column, f"{type(exc).__name__}: {exc.msg}")]
    except RecursionError:
        return None, [_issue(None, None, "the compiler ran out of stack: nested too deeply")]
    except MemoryError:
        return None, [_issue(None, None, "the compiler ran out of memory")]
    issues = []
    for error in result.errors:
        if isinstance(error, _Located):
            issues.append(_issue(error.line, error.column, str(error)))
        else:  # pragma: no cover - every RP error goes through TenantPolicy.error
            issues.append(_issue(None, None, str(error)))
    return result.code, issues


_cache: OrderedDict[tuple[object, ...], CompiledAction] = OrderedDict()


def clear_compile_cache() -> None:
    """Forget every cached compilation (tests; a worker recycling its memory)."""
    _cache.clear()


def compile_action(
    source: str | bytes,
    *,
    name: str,
    trigger: Trigger,
    limits: SandboxLimits,
    digest: str | None = None,
) -> CompiledAction:
    """Check and compile a tenant script; :class:`CompileFailed` lists every issue found.

    Results are cached per process (LRU of ``CACHE_SIZE``), keyed by the source's sha256, the
    name, trigger and compile limits, and the RestrictedPython and Python versions. A worker
    serves one tenant, so its cache only ever holds that tenant's code. ``digest`` is the
    sha256 (hex) of the source's UTF-8 bytes when the caller already computed it (the worker
    did, when the source arrived): a warm call then hashes nothing.
    """
    if trigger not in HANDLERS:
        raise ValueError(f"unknown trigger {trigger!r}")
    if type(name) is not str or not 0 < len(name) <= 200 or not name.isprintable():
        raise ValueError("action name must be 1-200 printable characters")
    raw = None
    if digest is None:
        raw = _source_bytes(source, limits)
        digest = hashlib.sha256(raw).hexdigest()
    key: tuple[object, ...] = (digest, name, trigger, RESTRICTED_PYTHON_VERSION, sys.version)
    key += (limits.max_source_bytes, limits.max_nodes, limits.max_depth)
    cached = _cache.get(key)
    if cached is not None:
        _cache.move_to_end(key)
        return cached
    if raw is None:
        raw = _source_bytes(source, limits)
    filename = f"<action:{name}>"
    text = _decode(raw)
    tree = _parse(text, filename)
    _check_size(tree, limits)
    issues = _check_layout(tree, trigger)
    code, rp_issues = _restricted(tree, filename)
    issues += rp_issues
    if code is None and not issues:  # pragma: no cover - RP returns code or errors
        issues.append(_issue(None, None, "compilation produced no code"))
    if issues or code is None:
        raise CompileFailed(sorted(issues, key=lambda i: (i.line or 0, i.column or 0)))
    compiled = CompiledAction(code, name, trigger, digest, tuple(text.splitlines()))
    _cache[key] = compiled
    if len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    return compiled


def check_action(
    source: str | bytes, *, name: str, trigger: Trigger, limits: SandboxLimits
) -> list[CompileIssue]:
    """Upload validation: every issue with the script, or ``[]`` when it compiles."""
    try:
        compile_action(source, name=name, trigger=trigger, limits=limits)
    except CompileFailed as exc:
        return exc.issues
    return []
