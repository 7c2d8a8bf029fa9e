"""Finding a function's source and its AST node, with the original line and column
numbers, for functions from files, ``__main__``, notebooks and ``exec`` (anything
``linecache`` knows), and for lambdas among several on one line."""

from __future__ import annotations

import ast
import inspect
import linecache
import operator
import threading
import types

from xcs._compiler._analysis import code_parameter_names, parameter_names

__all__ = ["NoSource", "function_node"]

_third = operator.itemgetter(2)  # the line of a ``co_lines()`` entry

# CPython 3.11 keeps the AST constructor's recursion depth in interpreter state, not
# per thread: two threads in ast.parse at once (a garbage collection in one runs a
# finalizer, which lets the other in) fail with "SystemError: AST constructor
# recursion depth mismatch" (python/cpython#106905). XCS parses from worker threads
# too (``_rt`` reads a callee's source while a region runs), so its parses take turns.
_parse_lock = threading.RLock()


def _parse(source: str, filename: str) -> ast.Module:
    with _parse_lock:
        return ast.parse(source, filename=filename)


class NoSource(Exception):
    """The function's source cannot be found or does not match its code (a fallback)."""


def function_node(
    fn: types.FunctionType,
) -> ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda:
    """The AST node of ``fn``, positioned at its real lines and columns.

    Raises:
        NoSource: no source, unparsable source, or source that is not this function.
    """
    code = fn.__code__
    if code.co_name == "<lambda>":
        return _lambda_node(code)
    fast = _block_by_indentation(code)
    if fast is not None:
        try:
            return _parse_function(code, *fast)
        except NoSource:
            pass  # cut short (a dedented string literal, say): ask the tokenizer
    try:
        lines, start = inspect.getsourcelines(code)
    except (OSError, TypeError) as exc:
        raise NoSource(f"its source is not available ({exc})") from None
    return _parse_function(code, lines, start)


def _block_by_indentation(code: types.CodeType) -> tuple[list[str], int] | None:
    """The lines of the ``def`` starting at ``co_firstlineno``, by indentation: every
    following line indented deeper than the first (blank lines included). Much
    faster than ``inspect.getsourcelines``'s tokenizer; its answer is checked by
    parsing, and the tokenizer is asked when the parse fails."""
    all_lines = linecache.getlines(code.co_filename)
    first = code.co_firstlineno - 1
    if not all_lines or first >= len(all_lines):
        return None
    head = all_lines[first]
    indent = len(head) - len(head.lstrip())
    end = first + 1
    seen_def = head.lstrip().startswith(("def ", "async def "))
    while end < len(all_lines):
        line = all_lines[end]
        stripped = line.strip()
        if stripped and (len(line) - len(line.lstrip())) <= indent:
            if not seen_def and stripped.startswith(("def ", "async def ", "@")):
                seen_def = stripped.startswith(("def ", "async def "))
                end += 1
                continue
            if stripped.startswith((")", "]", "}")):
                end += 1  # the closing bracket of a signature split over lines
                continue
            break
        end += 1
    while end > first + 1 and not all_lines[end - 1].strip():
        end -= 1
    return all_lines[first:end], first + 1


def _parse_function(
    code: types.CodeType, lines: list[str], start: int
) -> ast.FunctionDef | ast.AsyncFunctionDef:
    # Parse the lines where they stand: wrapping them in "if 1:" keeps their
    # indentation, so column offsets (and the carets of tracebacks) stay exact, and
    # blank lines in front put them on their own line numbers.
    text = "".join(lines)
    indented = bool(lines) and lines[0][:1] in (" ", "\t")
    head = "if 1:\n" if indented else ""
    padding = max(start - 1 - len(head.splitlines()), 0)
    try:
        tree = _parse("\n" * padding + head + text, code.co_filename)
    except SyntaxError as exc:
        raise NoSource(f"its source does not parse on its own ({exc.msg})") from None
    body = tree.body[0].body if indented else tree.body  # type: ignore[attr-defined]
    if not body or not isinstance(body[0], ast.FunctionDef | ast.AsyncFunctionDef):
        raise NoSource("its source is not a function definition")
    node = body[0]
    shift = start - (node.decorator_list[0].lineno if node.decorator_list else node.lineno)
    if shift:  # an indented def on line 1 (no room for "if 1:" in front)
        ast.increment_lineno(tree, shift)
    if node.name != code.co_name or parameter_names(node.args) != code_parameter_names(code):
        raise NoSource("its source does not match its code (was the file edited after import?)")
    last = max(filter(None, map(_third, code.co_lines())), default=0)
    if node.end_lineno is not None and last > node.end_lineno:
        raise NoSource("its source was cut short")
    return node


def _lambda_node(code: types.CodeType) -> ast.Lambda:
    lines = linecache.getlines(code.co_filename)
    if not lines:
        raise NoSource("its source is not available")
    try:
        tree = _parse("".join(lines), code.co_filename)
    except SyntaxError as exc:
        raise NoSource(f"the file containing it does not parse ({exc.msg})") from None
    # The first instruction after RESUME is the start of the lambda's body.
    positions = [
        (line, col)
        for line, _, col, _ in code.co_positions()
        if line is not None and col is not None and line >= code.co_firstlineno
    ]
    body_start = positions[1] if len(positions) > 1 else (code.co_firstlineno, 0)
    candidates = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Lambda)
        and node.lineno == code.co_firstlineno
        and parameter_names(node.args) == code_parameter_names(code)
        and _contains(node.body, body_start)
    ]
    if len(candidates) != 1:
        raise NoSource(
            "its source could not be located precisely"
            + (" (several lambdas match)" if candidates else "")
        )
    return candidates[0]


def _contains(node: ast.expr, position: tuple[int, int]) -> bool:
    start = (node.lineno, node.col_offset)
    end = (node.end_lineno or node.lineno, node.end_col_offset or 0)
    return start <= position < end
