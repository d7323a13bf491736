"""Derived numeric fields of a stream, declared as small arithmetic expressions.

A stream may declare fields computed from its other fields, for example::

    price_per_m2 = price / area_m2
    area_fee     = area_m2 * fee[district] * (1 + vat)
    relative     = hour_mean / (month_mean + 1)

The text is tokenized and parsed here by hand (a Pratt parser, i.e. recursive
descent by binding power) into a tree of frozen dataclasses, then evaluated with
numpy over a whole batch of rows. User text never reaches eval, exec, compile or
any Python parser.

Grammar, loosest binding first::

    expression := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := sum [("<" | "<=" | ">" | ">=" | "==" | "!=") sum]   (a < b < c is an error)
    sum        := product (("+" | "-") product)*                      (left-associative)
    product    := unary (("*" | "/" | "%") unary)*                    (left-associative)
    unary      := ("-" | "+") unary | power
    power      := primary ["^" unary]                                 (right-associative)
    primary    := NUMBER | NAME | NAME "(" expression ("," expression)* ")"
                | NAME "[" NAME "]" | "(" expression ")"
    NUMBER     := digits with an optional fraction and exponent: 1  2.5  .5  1e-3
    NAME       := [A-Za-z_][A-Za-z0-9_]*  ("and", "or", "not" are reserved)

So ``-2^2 == -4``, ``2^-1 == 0.5``, ``2^3^2 == 2^9``, ``not a < b`` is ``not (a < b)``,
``a + b > c and d`` is ``((a + b) > c) and d``, and ``a == not b`` needs parentheses.

Names are columns of the stream (numeric, float64, NaN when missing) or declared
constants; a column shadows a constant of the same name. ``table[column]`` looks
each row's value of a text (or bool, as "true"/"false") column up in a declared
table; a key not in the table gives NaN unless the table has a "*" default.

Functions: ``min(a, b, ...)`` and ``max(a, b, ...)`` (2 or more arguments),
``abs(x)``, ``sqrt(x)``, ``log(x)`` (natural), ``exp(x)``, ``round(x)`` and
``round(x, digits)`` (half to even; digits a constant whole number),
``clip(x, lo, hi)`` (= min(max(x, lo), hi)) and ``if(cond, a, b)``. A column may
share a function's name: ``min`` alone is a name, ``min(...)`` a call.

Values: every result is float64. Missing in, missing out: NaN in any operand
gives NaN, also for comparisons, ``and``/``or``/``not`` and the condition of
``if`` (only the branch ``if`` chooses matters). Comparisons and logic give 1.0
or 0.0; a number is true when nonzero. Division by zero gives ±inf (0/0 NaN),
``%`` takes the sign of the divisor (as in Python) and gives NaN for a zero
divisor, ``log`` of 0 is -inf and of a negative number NaN, like sqrt of one.
``Expression.check`` refuses what a declaration alone shows to be wrong: unknown
names, tables and key columns, a divisor that folds to the constant 0, log or sqrt
of a constant out of their domain, and round() digits that are not a constant.

Limits: at most 1000 characters, 200 nodes (numbers, names, lookups, operators,
calls) and 50 levels of nesting (parentheses, calls, unary operators, ``^``).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import reduce
from graphlib import CycleError, TopologicalSorter
from typing import Any

import numpy as np

MAX_LENGTH = 1000
MAX_NODES = 200
MAX_DEPTH = 50
MAX_ROUND_DIGITS = 15


class ExpressionError(ValueError):
    """A mistake in an expression, located in the user's text when it has a place."""

    def __init__(self, reason: str, expression: str, position: int | None = None) -> None:
        self.reason = reason
        self.expression = expression
        self.position = position
        message = reason if position is None else f"{reason} at position {position}"
        # A cycle spans several expressions and has no single text to quote.
        if expression or position is not None:
            message += f" of {expression!r}"
        super().__init__(message)


# --- the tree -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    value: float
    pos: int


@dataclass(frozen=True)
class Name:
    name: str
    pos: int


@dataclass(frozen=True)
class Lookup:
    table: str
    column: str
    pos: int  # of the table name
    column_pos: int


@dataclass(frozen=True)
class Unary:
    op: str  # "-" or "not"; a unary "+" leaves no node
    operand: Node
    pos: int


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node
    pos: int  # of the operator


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Node, ...]
    pos: int


Node = Number | Name | Lookup | Unary | Binary | Call


def _children(node: Node) -> tuple[Node, ...]:
    match node:
        case Unary():
            return (node.operand,)
        case Binary():
            return (node.left, node.right)
        case Call():
            return node.args
    return ()


def _walk(node: Node) -> Iterator[Node]:
    """Every node, parents first and children left to right (so leaves come in text order)."""
    yield node
    for child in _children(node):
        yield from _walk(child)


def _start(node: Node) -> int:
    """Where the node's text begins (a binary node is placed at its operator)."""
    return _start(node.left) if isinstance(node, Binary) else node.pos


# --- operators and functions --------------------------------------------------------------


def _boolean(result: Any, *operands: Any) -> Any:
    """1.0 where ``result`` holds, else 0.0; NaN where any operand is missing."""
    missing = reduce(np.logical_or, (np.isnan(x) for x in operands))
    return np.where(missing, np.nan, np.where(result, 1.0, 0.0))


def _power(a: Any, b: Any) -> Any:
    # IEEE pow gives 1 for 1^NaN and NaN^0; a missing value must stay missing.
    return np.where(np.isnan(a) | np.isnan(b), np.nan, np.power(a, b))


def _round(x: Any, digits: int) -> Any:
    # np.round scales by 10^digits first, which overflows near 1e308; from 2^52 up every float is whole.
    return np.round(x, digits) if digits < 0 else np.where(np.abs(x) >= 2.0**52, x, np.round(x, digits))


_COMPARE = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal,
            "!=": np.not_equal}
_COMPARISONS = tuple(_COMPARE)
_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide, "%": np.mod, "^": _power,
    **{op: lambda a, b, test=test: _boolean(test(a, b), a, b) for op, test in _COMPARE.items()},
    "and": lambda a, b: _boolean((a != 0) & (b != 0), a, b),
    "or": lambda a, b: _boolean((a != 0) | (b != 0), a, b),
}
_UNARY: dict[str, Callable[[Any], Any]] = {"-": np.negative, "not": lambda a: _boolean(a == 0, a)}
# Binding powers (left, right) of infix operators: higher binds tighter; left < right makes an
# operator left-associative, left > right right-associative. Comparisons are non-associative.
_INFIX: dict[str, tuple[int, int]] = {
    "or": (1, 2), "and": (3, 4), **dict.fromkeys(_COMPARISONS, (7, 8)), "+": (9, 10), "-": (9, 10),
    "*": (11, 12), "/": (11, 12), "%": (11, 12), "^": (16, 15),
}
# Power an operand of a prefix operator is parsed at: "not" takes a whole comparison,
# "-" less than a power (-2^2 == -4) but more than a product.
_PREFIX: dict[str, int] = {"not": 5, "-": 13, "+": 13}
_KEYWORDS = frozenset({"and", "or", "not"})


@dataclass(frozen=True)
class _Function:
    min_args: int
    max_args: int | None  # None: no upper bound
    apply: Callable[..., Any]

    def arity(self) -> str:
        if self.max_args is None:
            return f"at least {self.min_args} arguments"
        if self.max_args == self.min_args:
            return f"{self.min_args} argument{'s' * (self.min_args > 1)}"
        return f"{self.min_args} or {self.max_args} arguments"


_FUNCTIONS: dict[str, _Function] = {
    # "+ 0.0" turns -0.0 into 0.0: which zero np.minimum(0.0, -0.0) picks depends on the CPU.
    "min": _Function(2, None, lambda *xs: reduce(np.minimum, xs) + 0.0),
    "max": _Function(2, None, lambda *xs: reduce(np.maximum, xs) + 0.0),
    "abs": _Function(1, 1, np.abs),
    "sqrt": _Function(1, 1, np.sqrt),
    "log": _Function(1, 1, np.log),
    "exp": _Function(1, 1, np.exp),
    "round": _Function(1, 2, np.round),
    "clip": _Function(3, 3, lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi) + 0.0),
    "if": _Function(3, 3, lambda c, a, b: np.where(np.isnan(c), np.nan, np.where(c != 0, a, b))),
}


# --- tokens -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "name", "op" (operators, punctuation and keywords) or "end"
    text: str
    pos: int

    def describe(self) -> str:
        return {"end": "end of input", "number": f"number {self.text}", "name": f"name {self.text!r}"}.get(
            self.kind, repr(self.text))


_TOKEN = re.compile(
    r"(?P<space>[ \t\r\n]+)"
    r"|(?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op><=|>=|==|!=|[-+*/%^<>()\[\],])"
)
_GLUED_TO_NUMBER = re.compile(r"[A-Za-z0-9_.]+")  # 2x, 1e, 1.2.3, 1_000
_HINTS = {"=": "use '==' to compare", "!": "use 'not' or '!='", "&": "use 'and'", "|": "use 'or'"}


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text.startswith("**", pos):
            raise ExpressionError("'**' is not an operator (use '^' for powers)", text, pos)
        match = _TOKEN.match(text, pos)
        if match is None:
            hint = _HINTS.get(text[pos])
            raise ExpressionError(f"unexpected character {text[pos]!r}{f' ({hint})' if hint else ''}", text, pos)
        kind = match.lastgroup or ""
        if kind == "number" and (glued := _GLUED_TO_NUMBER.match(text, match.end())):
            raise ExpressionError(f"malformed number {text[pos : glued.end()]!r}", text, pos)
        if kind == "name" and match.group() in _KEYWORDS:
            kind = "op"
        if kind != "space":
            tokens.append(_Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


# --- parser -------------------------------------------------------------------------------


class _Parser:
    """A Pratt parser for the grammar of the module docstring, with the binding powers of _INFIX and _PREFIX."""

    def __init__(self, text: str) -> None:
        if len(text) > MAX_LENGTH:
            raise ExpressionError(f"expression longer than {MAX_LENGTH} characters", text, MAX_LENGTH)
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0
        self.nodes = 0

    def parse(self) -> Node:
        if self.token.kind == "end":
            raise self.error("empty expression", 0)
        root = self.expression()
        if self.at(")"):
            raise self.error("unexpected ')' with no matching '('", self.token.pos)
        if self.token.kind != "end":
            raise self.error(f"unexpected {self.token.describe()} after a complete expression", self.token.pos)
        return root

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def at(self, *texts: str) -> bool:
        return self.token.kind == "op" and self.token.text in texts

    def advance(self) -> _Token:
        self.index += 1
        return self.tokens[self.index - 1]

    def error(self, reason: str, pos: int) -> ExpressionError:
        return ExpressionError(reason, self.text, pos)

    def node(self, node: Node) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.error(f"expression too large (more than {MAX_NODES} numbers, names and operators)", node.pos)
        return node

    @contextmanager
    def nested(self, pos: int) -> Iterator[None]:
        # Bounds the recursion too: a Python stack overflow is never the answer to "((((...".
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nested more than {MAX_DEPTH} levels deep", pos)
        try:
            yield
        finally:
            self.depth -= 1

    def close(self, closer: str, opener: _Token, expected: str = "") -> None:
        if not self.at(closer):
            found = self.token.describe()
            expected = expected or repr(closer)
            reason = f"expected {expected} to close {opener.text!r} from position {opener.pos}, found {found}"
            raise self.error(reason, self.token.pos)
        self.advance()

    def expression(self, min_power: int = 0) -> Node:
        """Pratt loop: fold in infix operators that bind tighter than ``min_power``."""
        left = self.prefix(min_power)
        compared = False
        while self.token.kind == "op" and (powers := _INFIX.get(self.token.text)) and powers[0] > min_power:
            op = self.advance()
            if op.text in _COMPARISONS:
                if compared:
                    raise self.error(f"comparisons cannot be chained (join them with 'and'), found {op.text!r}", op.pos)
                compared = True
            if op.text == "^":  # right-associative, so a chain of them recurses
                with self.nested(op.pos):
                    left = self.node(Binary(op.text, left, self.expression(powers[1]), op.pos))
            else:
                left = self.node(Binary(op.text, left, self.expression(powers[1]), op.pos))
        return left

    def prefix(self, min_power: int) -> Node:
        op = self.token
        if not self.at("-", "+", "not"):
            return self.primary()
        if op.text == "not" and min_power > _PREFIX["not"]:
            raise self.error("'not' binds looser than this operator: put 'not ...' in parentheses", op.pos)
        self.advance()
        with self.nested(op.pos):
            operand = self.expression(_PREFIX[op.text])
        return operand if op.text == "+" else self.node(Unary(op.text, operand, op.pos))

    def primary(self) -> Node:
        token = self.token
        if token.kind == "number":
            self.advance()
            value = float(token.text)  # the tokenizer admitted only digits, '.', and an exponent
            if not math.isfinite(value):
                raise self.error(f"number {token.text} is too large", token.pos)
            return self.node(Number(value, token.pos))
        if token.kind == "name":
            self.advance()
            if self.at("("):
                return self.call(token)
            if self.at("["):
                return self.lookup(token)
            return self.node(Name(token.text, token.pos))
        if self.at("("):
            self.advance()
            with self.nested(token.pos):
                inner = self.expression()
            self.close(")", token)
            return inner
        raise self.error(f"expected a number, a name or '(', found {token.describe()}", token.pos)

    def call(self, name: _Token) -> Node:
        function = _FUNCTIONS.get(name.text)
        if function is None:
            raise self.error(f"unknown function {name.text!r} (known: {', '.join(sorted(_FUNCTIONS))})", name.pos)
        opener = self.advance()
        args: list[Node] = []
        with self.nested(opener.pos):
            if not self.at(")"):
                args.append(self.expression())
                while self.at(","):
                    self.advance()
                    args.append(self.expression())
        self.close(")", opener, "',' or ')'")
        if len(args) < function.min_args or (function.max_args is not None and len(args) > function.max_args):
            raise self.error(f"{name.text}() takes {function.arity()}, got {len(args)}", name.pos)
        return self.node(Call(name.text, tuple(args), name.pos))

    def lookup(self, table: _Token) -> Node:
        opener = self.advance()
        column = self.token
        if column.kind != "name":
            raise self.error(f"expected a column name inside '[ ]', found {column.describe()}", column.pos)
        self.advance()
        self.close("]", opener)
        return self.node(Lookup(table.text, column.text, table.pos, column.pos))


# --- evaluation ---------------------------------------------------------------------------


class _NotConstant(Exception):
    """Raised while folding when a value depends on the rows."""


@dataclass(frozen=True)
class _Env:
    text: str
    name: Callable[[Name], Any]
    lookup: Callable[[Lookup], Any]


def _eval(node: Node, env: _Env) -> Any:
    """A numpy float64 scalar or array; callers hold np.errstate so inf/NaN arise silently."""
    match node:
        case Number():
            return np.float64(node.value)
        case Name():
            return env.name(node)
        case Lookup():
            return env.lookup(node)
        case Unary():
            return _UNARY[node.op](_eval(node.operand, env))
        case Binary():
            return _BINARY[node.op](_eval(node.left, env), _eval(node.right, env))
        case Call(function="round", args=(x, digits)):
            return _round(_eval(x, env), _round_digits(_eval(digits, env), env.text, _start(digits)))
        case Call():
            return _FUNCTIONS[node.function].apply(*(_eval(arg, env) for arg in node.args))
    raise TypeError(f"not an expression node: {node!r}")


def _round_digits(value: Any, text: str, pos: int) -> int:
    if value is None or np.ndim(value) != 0 or not float(value).is_integer() or abs(value) > MAX_ROUND_DIGITS:
        reason = f"round() digits must be a constant whole number from -{MAX_ROUND_DIGITS} to {MAX_ROUND_DIGITS}"
        raise ExpressionError(reason, text, pos)
    return int(value)


def _fold(node: Node, text: str, constants: Mapping[str, float]) -> float | None:
    """The node's value when it does not depend on the rows, else None."""

    def name(n: Name) -> Any:
        if n.name not in constants:
            raise _NotConstant
        return np.float64(constants[n.name])

    def lookup(_: Lookup) -> Any:
        raise _NotConstant

    try:
        with np.errstate(all="ignore"):
            return float(_eval(node, _Env(text, name, lookup)))
    except _NotConstant:
        return None


def _table_value(table: Mapping[str, float], key: Any, default: float) -> float:
    if key is None or (isinstance(key, float) and math.isnan(key)):
        return math.nan  # missing in, missing out, even with a default
    if isinstance(key, bool | np.bool_):
        key = "true" if key else "false"
    return float(table.get(str(key), default))


def _lookup(table: Mapping[str, float], keys: Iterable[Any]) -> np.ndarray:
    default = float(table.get("*", math.nan))
    # A batch holds few distinct keys: remember each one's value (keyed with its type, as True == 1).
    memo: dict[tuple[type, Any], float] = {}
    values = []
    for key in keys:
        slot = (key.__class__, key)
        value = memo.get(slot)
        if value is None:
            value = memo[slot] = _table_value(table, key, default)
        values.append(value)
    return np.array(values, dtype=np.float64)


def _suggestion(name: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class Expression:
    """A parsed expression; equal expressions have equal text."""

    text: str
    root: Node = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", _Parser(self.text).parse())

    def _nodes(self, kind: type) -> list[Any]:
        return [node for node in _walk(self.root) if isinstance(node, kind)]

    def names(self) -> frozenset[str]:
        return frozenset(node.name for node in self._nodes(Name))

    def tables(self) -> frozenset[str]:
        return frozenset(node.table for node in self._nodes(Lookup))

    def lookup_columns(self) -> frozenset[str]:
        return frozenset(node.column for node in self._nodes(Lookup))

    def _error(self, reason: str, pos: int | None) -> ExpressionError:
        return ExpressionError(reason, self.text, pos)

    def _unknown_name(self, node: Name, known: Collection[str], tables: Collection[str],
                      key_columns: Collection[str]) -> ExpressionError:
        if node.name in tables:
            return self._error(f"{node.name!r} is a table: look a value up with {node.name}[column]", node.pos)
        if node.name in key_columns:
            reason = f"{node.name!r} is a text column: use it as a lookup key, as in table[{node.name}]"
            return self._error(reason, node.pos)
        return self._error(f"unknown name {node.name!r}{_suggestion(node.name, known)}", node.pos)

    def _unknown_lookup(self, node: Lookup, tables: Collection[str], key_columns: Collection[str]) -> ExpressionError:
        if node.table not in tables:
            return self._error(f"unknown table {node.table!r}{_suggestion(node.table, tables)}", node.pos)
        keys = ", ".join(sorted(key_columns)) or "none declared"
        return self._error(f"{node.column!r} is not a key column (key columns: {keys})", node.column_pos)

    def check(self, *, columns: Collection[str], constants: Mapping[str, float],
              tables: Mapping[str, Mapping[str, float]], key_columns: Collection[str]) -> None:
        """Raise ExpressionError for the first mistake a declaration can reveal before any row arrives."""
        columns, key_columns = frozenset(columns), frozenset(key_columns)
        for node in _walk(self.root):  # names first, in text order
            if isinstance(node, Name) and node.name not in columns and node.name not in constants:
                raise self._unknown_name(node, columns | set(constants), tables, key_columns)
            if isinstance(node, Lookup) and (node.table not in tables or node.column not in key_columns):
                raise self._unknown_lookup(node, tables, key_columns)
        fixed = {name: value for name, value in constants.items() if name not in columns}
        for node in _walk(self.root):
            if isinstance(node, Binary) and node.op in ("/", "%"):
                if _fold(node.right, self.text, fixed) == 0:
                    what = "division" if node.op == "/" else "modulo"
                    raise self._error(f"{what} by zero (constant divisor)", _start(node.right))
            elif isinstance(node, Call) and node.function in ("log", "sqrt"):
                value = _fold(node.args[0], self.text, fixed)
                if value is not None and (value < 0 or (value == 0 and node.function == "log")):
                    sign = "negative" if value < 0 else "zero"
                    raise self._error(f"{node.function} of a {sign} constant ({value:g})", _start(node.args[0]))
            elif isinstance(node, Call) and node.function == "round" and len(node.args) == 2:
                _round_digits(_fold(node.args[1], self.text, fixed), self.text, _start(node.args[1]))

    def evaluate(self, columns: Mapping[str, np.ndarray | Sequence[Any]], constants: Mapping[str, float],
                 tables: Mapping[str, Mapping[str, float]], rows: int) -> np.ndarray:
        """The expression over ``rows`` rows: a new float64 array of that length."""
        numeric: dict[str, np.ndarray] = {}  # each column converted once

        def name(node: Name) -> Any:
            if node.name in columns:
                if node.name not in numeric:
                    numeric[node.name] = self._numeric_column(node, columns[node.name], rows)
                return numeric[node.name]
            if node.name in constants:
                return np.float64(constants[node.name])
            raise self._unknown_name(node, columns.keys() | constants.keys(), tables, ())

        def lookup(node: Lookup) -> Any:
            if node.table not in tables:
                raise self._unknown_lookup(node, tables, ())
            if node.column not in columns:
                raise self._error(f"unknown key column {node.column!r}", node.column_pos)
            keys = columns[node.column]
            if len(keys) != rows:
                raise self._error(f"column {node.column!r} has {len(keys)} values, expected {rows}", node.column_pos)
            return _lookup(tables[node.table], keys)

        with np.errstate(all="ignore"):
            value = _eval(self.root, _Env(self.text, name, lookup))
        return np.array(np.broadcast_to(value, (rows,)), dtype=np.float64)

    def _numeric_column(self, node: Name, values: np.ndarray | Sequence[Any], rows: int) -> np.ndarray:
        try:
            if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
                array = values.astype(np.float64, copy=False)
            else:
                array = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
        except (TypeError, ValueError):
            raise self._error(f"column {node.name!r} holds values that are not numbers", node.pos) from None
        if array.shape != (rows,):
            raise self._error(f"column {node.name!r} has {len(array)} values, expected {rows}", node.pos)
        return array


def parse(text: str) -> Expression:
    """Parse ``text``; raises ExpressionError, placed in the text, on any syntax error or limit."""
    return Expression(text)


def dependencies(expressions: Mapping[str, Expression]) -> list[str]:
    """The derived names in an order where each comes after the derived names it uses."""
    graph = {
        name: sorted(used for used in expression.names() | expression.lookup_columns() if used in expressions)
        for name, expression in expressions.items()
    }
    try:
        return list(TopologicalSorter(graph).static_order())
    except CycleError as error:
        # graphlib lists the cycle from each field to one that uses it; reversed it reads "a uses b".
        cycle = " -> ".join(reversed(error.args[1]))
        raise ExpressionError(f"cycle between derived fields: {cycle}", "") from None
