"""shared.expressions: precedence, errors and their positions, missing values, lookups,
constant folding, limits, cycles, and a property test against a reference evaluator."""

from __future__ import annotations

import ast
import math
import operator
import warnings
from dataclasses import FrozenInstanceError
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import shared.expressions
from shared.expressions import MAX_DEPTH, MAX_LENGTH, MAX_NODES, ExpressionError, dependencies, parse

NAN = math.nan
A = np.array([3.0, -2.0, 0.0, 7.5, NAN])
B = np.array([2.0, 4.0, -1.5, 7.5, 1.0])
C = np.array([0.5, NAN, 10.0, -3.0, 2.0])
COLUMNS: dict[str, Any] = {
    "a": A,
    "b": B,
    "c": C,
    "flag": ["peak", "off", "holiday", None, "peak"],
    "on": [True, False, None, np.True_, False],
}
CONSTANTS = {"k": 10.0, "tax": 0.25, "zero": 0.0}
TABLES = {"tariff": {"peak": 0.30, "off": 0.10}, "bonus": {"true": 2.0, "*": 1.0}}
ROWS = 5
CHECK = {"columns": ["a", "b", "c", "power_w"], "constants": CONSTANTS, "tables": TABLES, "key_columns": ["flag", "on"]}


def run(text: str, columns: dict[str, Any] = COLUMNS, rows: int = ROWS) -> np.ndarray:
    return parse(text).evaluate(columns, CONSTANTS, TABLES, rows)


def truth(result: np.ndarray, *operands: np.ndarray) -> np.ndarray:
    """The documented boolean semantics: 1.0 / 0.0, NaN where an operand is missing."""
    missing = np.any([np.isnan(np.broadcast_to(x, result.shape)) for x in operands], axis=0)
    return np.where(missing, NAN, result.astype(float))


def assert_values(actual: np.ndarray, expected: Any, rows: int = ROWS) -> None:
    assert actual.dtype == np.float64
    assert actual.shape == (rows,)
    np.testing.assert_allclose(actual, np.broadcast_to(np.asarray(expected, dtype=float), (rows,)), rtol=1e-12)


with np.errstate(all="ignore"):
    EVALUATIONS = [
        ("a + b * c", A + B * C),
        ("(a + b) * c", (A + B) * C),
        ("a - b - c", (A - B) - C),
        ("a - (b - c)", A - (B - C)),
        ("a / b / c", (A / B) / C),
        ("a - b + c", (A - B) + C),
        ("a * b % k", np.mod(A * B, 10.0)),
        ("k % b * a", np.mod(10.0, B) * A),
        ("-7 % 3", 2.0),  # sign of the divisor, as in Python
        ("7 % -3", -2.0),
        ("2 ^ 3 ^ 2", 512.0),  # right-associative
        ("(2 ^ 3) ^ 2", 64.0),
        ("-2 ^ 2", -4.0),  # power binds tighter than the unary minus on its left
        ("(-2) ^ 2", 4.0),
        ("2 ^ -1", 0.5),
        ("2 ^ -1 * 4", 2.0),
        ("-a ^ 2", -(A**2)),
        ("a * -b", A * -B),
        ("a - -b", A + B),
        ("+a", A),
        ("- -a", A),
        ("1e-3 * a", A * 1e-3),
        (".5 + 2.5 + 1E2 + 3.", 106.0),
        ("a + b > c", truth((A + B) > C, A, B, C)),
        ("a < b", truth(A < B, A, B)),
        ("a <= b", truth(A <= B, A, B)),
        ("a > b", truth(A > B, A, B)),
        ("a >= b", truth(A >= B, A, B)),
        ("a == b", truth(A == B, A, B)),
        ("a != b", truth(A != B, A, B)),
        ("not a > b", truth(~(A > B), A, B)),
        ("not a", truth(A == 0, A)),
        ("not not b", truth(B != 0, B)),
        ("a > 0 and b > 0", truth((A > 0) & (B > 0), A, B)),
        ("a > 0 or b > 0 and c > 0", truth((A > 0) | ((B > 0) & (C > 0)), A, B, C)),
        ("not a > 0 or b > 0", truth(~(A > 0) | (B > 0), A, B)),
        ("a and b", truth((A != 0) & (B != 0), A, B)),
        ("min(a, b, c)", np.minimum(np.minimum(A, B), C)),
        ("max(a, b)", np.maximum(A, B)),
        ("abs(a - b)", np.abs(A - B)),
        ("sqrt(abs(a))", np.sqrt(np.abs(A))),
        ("log(b)", np.log(B)),
        ("exp(a)", np.exp(A)),
        ("round(a / 3)", np.round(A / 3)),
        ("round(a / 3, 2)", np.round(A / 3, 2)),
        ("round(1234.5678, -2)", 1200.0),
        ("round(2.5) + round(3.5)", 6.0),  # half to even
        ("clip(a, -1, 5)", np.clip(A, -1, 5)),
        ("if(a > b, a, b)", np.where(np.isnan(A) | np.isnan(B), NAN, np.where(A > B, A, B))),
        ("tariff[flag] * (1 + tax)", np.array([0.3, 0.1, NAN, NAN, 0.3]) * 1.25),
        ("bonus[on]", [2.0, 1.0, NAN, 2.0, 1.0]),
        ("k", 10.0),
        ("k * 2 + 1", 21.0),
    ]


@pytest.mark.parametrize(("text", "expected"), EVALUATIONS, ids=[text for text, _ in EVALUATIONS])
def test_evaluation_follows_precedence(text: str, expected: Any) -> None:
    assert_values(run(text), expected)


def test_the_declarations_of_the_brief_evaluate_in_dependency_order() -> None:
    derived = {
        "cost": parse("kwh * tariff[tariff_flag] * (1 + tax)"),
        "co2e_kg": parse("kwh * emission_factor"),
        "kwh": parse("power_w * hours / 1000"),
        "dif_media": parse("media_hora - media_30d"),
        "media_hora_relativa": parse("media_hora / (media_30d + 1)"),
    }
    columns: dict[str, Any] = {
        "power_w": np.array([1500.0, NAN, 800.0]),
        "hours": np.array([2.0, 1.0, 0.5]),
        "tariff_flag": ["peak", "off", "unknown"],
        "media_hora": np.array([10.0, 4.0, NAN]),
        "media_30d": np.array([8.0, 4.0, 1.0]),
    }
    constants = {"tax": 0.2, "emission_factor": 0.5}
    tables = {"tariff": {"peak": 0.3, "off": 0.1}}
    order = dependencies(derived)
    assert sorted(order) == sorted(derived)
    assert order.index("kwh") < order.index("cost") and order.index("kwh") < order.index("co2e_kg")
    for name in order:
        derived[name].check(columns=set(columns) - {"tariff_flag"} | set(order[: order.index(name)]),
                            constants=constants, tables=tables, key_columns=["tariff_flag"])
        columns[name] = derived[name].evaluate(columns, constants, tables, 3)
    assert_values(columns["kwh"], [3.0, NAN, 0.4], 3)
    assert_values(columns["co2e_kg"], [1.5, NAN, 0.2], 3)
    assert_values(columns["cost"], [3.0 * 0.3 * 1.2, NAN, NAN], 3)
    assert_values(columns["dif_media"], [2.0, 0.0, NAN], 3)
    assert_values(columns["media_hora_relativa"], [10 / 9, 0.8, NAN], 3)


def test_names_tables_and_lookup_columns() -> None:
    expression = parse("cost * tariff[flag] + min(a, k) - bonus[on] + min")
    assert expression.names() == {"cost", "a", "k", "min"}  # a column may be called like a function
    assert expression.tables() == {"tariff", "bonus"}
    assert expression.lookup_columns() == {"flag", "on"}


def test_expressions_are_frozen_values() -> None:
    assert parse("a + b") == parse("a + b") and hash(parse("a + b")) == hash(parse("a + b"))
    assert parse("a + b") != parse("a+b")
    with pytest.raises(FrozenInstanceError):
        parse("a").text = "b"  # type: ignore[misc]


# --- errors ---------------------------------------------------------------------------------

SYNTAX_ERRORS = [
    ("", 0, "empty expression"),
    ("   ", 0, "empty expression"),
    ("a $ b", 2, "unexpected character '$'"),
    ("a = b", 2, "unexpected character '=' (use '==' to compare)"),
    ("a ** 2", 2, "'**' is not an operator (use '^' for powers)"),
    ("a.real", 1, "unexpected character '.'"),
    ("2x", 0, "malformed number '2x'"),
    ("1.2.3", 0, "malformed number '1.2.3'"),
    ("1_000", 0, "malformed number '1_000'"),
    ("1e", 0, "malformed number '1e'"),
    ("1e999", 0, "number 1e999 is too large"),
    ("(a + b", 6, "expected ')' to close '(' from position 0, found end of input"),
    ("((a) + b", 8, "expected ')' to close '(' from position 0, found end of input"),
    ("(a b)", 3, "expected ')' to close '(' from position 0, found name 'b'"),
    ("a + b)", 5, "unexpected ')' with no matching '('"),
    ("a b", 2, "unexpected name 'b' after a complete expression"),
    ("a +", 3, "expected a number, a name or '(', found end of input"),
    ("* a", 0, "expected a number, a name or '(', found '*'"),
    ("a + and", 4, "expected a number, a name or '(', found 'and'"),
    ("()", 1, "expected a number, a name or '(', found ')'"),
    ("not", 3, "expected a number, a name or '(', found end of input"),
    ("min(a b)", 6, "expected ',' or ')' to close '(' from position 3, found name 'b'"),
    ("min(a,)", 6, "expected a number, a name or '(', found ')'"),
    ("foo(a)", 0, "unknown function 'foo' (known: abs, clip, exp, if, log, max, min, round, sqrt)"),
    ("__import__(os)", 0, "unknown function '__import__'"),
    ("__import__('os')", 11, "unexpected character \"'\""),
    ("lambda: 1", 6, "unexpected character ':'"),
    ("min(a)", 0, "min() takes at least 2 arguments, got 1"),
    ("abs(a, b)", 0, "abs() takes 1 argument, got 2"),
    ("round()", 0, "round() takes 1 or 2 arguments, got 0"),
    ("clip(a, b)", 0, "clip() takes 3 arguments, got 2"),
    ("1 + if(a, b)", 4, "if() takes 3 arguments, got 2"),
    ("a < b < c", 6, "comparisons cannot be chained (join them with 'and'), found '<'"),
    ("a < b + c == d", 10, "comparisons cannot be chained"),
    ("a == not b", 5, "'not' binds looser than this operator: put 'not ...' in parentheses"),
    ("-not a", 1, "'not' binds looser"),
    ("tariff[1]", 7, "expected a column name inside '[ ]', found number 1"),
    ("tariff[flag", 11, "expected ']' to close '[' from position 6, found end of input"),
    ("tariff[(flag)]", 7, "expected a column name inside '[ ]', found '('"),
]


@pytest.mark.parametrize(("text", "position", "reason"), SYNTAX_ERRORS, ids=[t for t, _, _ in SYNTAX_ERRORS])
def test_syntax_errors_name_the_token_and_its_position(text: str, position: int, reason: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    assert caught.value.position == position
    assert caught.value.reason.startswith(reason)
    assert caught.value.expression == text


def test_error_message_format() -> None:
    with pytest.raises(ValueError) as caught:  # an ExpressionError is a ValueError
        parse("a +")
    assert str(caught.value) == "expected a number, a name or '(', found end of input at position 3 of 'a +'"
    error = ExpressionError("something wrong", "x + y")
    assert error.position is None and str(error) == "something wrong of 'x + y'"


CHECK_ERRORS = [
    ("powr * 2", 0, "unknown name 'powr' (did you mean 'power_w'?)"),
    ("a + qqq", 4, "unknown name 'qqq'"),
    ("a + tariff", 4, "'tariff' is a table: look a value up with tariff[column]"),
    ("flag * 2", 0, "'flag' is a text column: use it as a lookup key, as in table[flag]"),
    ("tarif[flag]", 0, "unknown table 'tarif' (did you mean 'tariff'?)"),
    ("1 + a[flag]", 4, "unknown table 'a'"),
    ("tariff[a]", 7, "'a' is not a key column (key columns: flag, on)"),
    ("a / 0", 4, "division by zero (constant divisor)"),
    ("a / (2 - 2)", 5, "division by zero (constant divisor)"),
    ("a / zero", 4, "division by zero (constant divisor)"),
    ("b + a % (zero * k)", 9, "modulo by zero (constant divisor)"),
    ("a / (k - 10)", 5, "division by zero (constant divisor)"),
    ("a / min(k, 0)", 4, "division by zero (constant divisor)"),
    ("log(-1)", 4, "log of a negative constant (-1)"),
    ("log(zero)", 4, "log of a zero constant (0)"),
    ("sqrt(1 - k)", 5, "sqrt of a negative constant (-9)"),
    ("round(a, b)", 9, "round() digits must be a constant whole number from -15 to 15"),
    ("round(a, 0.5)", 9, "round() digits must be a constant whole number"),
    ("round(a, 16)", 9, "round() digits must be a constant whole number"),
]


@pytest.mark.parametrize(("text", "position", "reason"), CHECK_ERRORS, ids=[t for t, _, _ in CHECK_ERRORS])
def test_check_finds_declaration_mistakes(text: str, position: int, reason: str) -> None:
    expression = parse(text)  # each is valid syntax
    with pytest.raises(ExpressionError) as caught:
        expression.check(**CHECK)
    assert caught.value.position == position
    assert caught.value.reason.startswith(reason)


@pytest.mark.parametrize(
    "text",
    ["a / b", "a / (b - b)", "a / tariff[flag]", "log(k)", "sqrt(zero)", "round(a, k / 5)", "round(a, -2)",
     "a % (zero + 1)", "if(zero, a / b, 0)", "power_w * bonus[on]"],
)
def test_check_accepts_sound_declarations(text: str) -> None:
    parse(text).check(**CHECK)


def test_check_reports_the_first_unknown_name_before_a_constant_divisor() -> None:
    with pytest.raises(ExpressionError) as caught:
        parse("a / 0 + powr").check(**CHECK)
    assert caught.value.reason.startswith("unknown name 'powr'")


def test_a_column_shadows_a_constant_so_it_is_not_folded() -> None:
    parse("a / zero").check(columns=["a", "zero"], constants={"zero": 0.0}, tables={}, key_columns=[])
    values = parse("a / zero").evaluate({"a": [1.0, 2.0], "zero": [4.0, 8.0]}, {"zero": 0.0}, {}, 2)
    assert_values(values, [0.25, 0.25], 2)


def test_evaluate_refuses_names_it_is_not_given() -> None:
    for text, position, reason in [
        ("a + nope", 4, "unknown name 'nope'"),
        ("nope[flag]", 0, "unknown table 'nope'"),
        ("tariff[nope]", 7, "unknown key column 'nope'"),
        ("a + flag", 4, "column 'flag' holds values that are not numbers"),
    ]:
        with pytest.raises(ExpressionError) as caught:
            run(text)
        assert (caught.value.position, caught.value.reason[: len(reason)]) == (position, reason)


def test_evaluate_refuses_a_column_of_the_wrong_length() -> None:
    with pytest.raises(ExpressionError, match="column 'a' has 5 values, expected 3"):
        run("a + 1", rows=3)
    with pytest.raises(ExpressionError, match="column 'flag' has 5 values, expected 3"):
        run("tariff[flag]", rows=3)


# --- values at run time ---------------------------------------------------------------------

NAN_IN_NAN_OUT = [
    "n + 1", "1 - n", "n * 0", "0 / n", "n % 2", "2 % n", "n ^ 0", "1 ^ n", "-n", "n < 1", "n == n", "n != n",
    "not n", "n and 0", "0 and n", "1 or n", "n or 1", "min(n, 1)", "max(1, 2, n)", "abs(n)", "sqrt(n)", "log(n)",
    "exp(n)", "round(n)", "round(n, 1)", "clip(n, 0, 1)", "clip(1, n, 2)", "clip(1, 0, n)", "if(n, 1, 2)",
    "if(1, n, 2)", "if(0, 1, n)",
]


@pytest.mark.parametrize("text", NAN_IN_NAN_OUT)
def test_a_missing_value_gives_a_missing_result(text: str) -> None:
    assert np.isnan(run(text, {"n": np.full(3, NAN)}, rows=3)).all()


def test_if_only_looks_at_the_branch_it_takes() -> None:
    columns = {"n": np.full(3, NAN), "c": np.array([1.0, 0.0, NAN])}
    assert_values(run("if(c, 5, n)", columns, rows=3), [5.0, NAN, NAN], 3)
    assert_values(run("if(c, n, 7)", columns, rows=3), [NAN, 7.0, NAN], 3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1 / 0", math.inf), ("-1 / 0", -math.inf), ("0 / 0", NAN), ("a % 0", NAN), ("log(0)", -math.inf),
     ("log(-1)", NAN), ("sqrt(-1)", NAN), ("exp(1000)", math.inf), ("10 ^ 400", math.inf), ("(-8) ^ (1/3)", NAN),
     ("0 ^ -1", math.inf), ("round(1e308, 2)", 1e308), ("1e308 * 10 - 1e308 * 10", NAN)],
)
def test_runtime_arithmetic_faults_give_inf_or_nan_silently(text: str, expected: float) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy RuntimeWarning would fail the test
        values = run(text, {"a": np.ones(2)}, rows=2)
    assert_values(values, expected, 2)


def test_lookup_with_missing_keys_and_a_default() -> None:
    keys = np.array(["peak", "off", "PEAK", "", "peak"], dtype=object)
    tables = {"plain": {"peak": 1.0, "off": 2.0}, "defaulted": {"peak": 1.0, "*": 9.0}}
    columns = {"key": keys, "with_none": ["peak", None, "x", NAN, "off"], "flags": [True, False, np.False_, None, 1]}

    def lookup(text: str) -> np.ndarray:
        return parse(text).evaluate(columns, {}, tables, 5)

    assert_values(lookup("plain[key]"), [1.0, 2.0, NAN, NAN, 1.0])  # keys are case-sensitive
    assert_values(lookup("defaulted[key]"), [1.0, 9.0, 9.0, 9.0, 1.0])
    assert_values(lookup("defaulted[with_none]"), [1.0, NAN, 9.0, NAN, 9.0])  # missing key value: no default
    tables["flagged"] = {"true": 5.0, "false": 6.0, "1": 7.0}
    assert_values(lookup("flagged[flags]"), [5.0, 6.0, 6.0, NAN, 7.0])
    assert_values(parse("plain[key]").evaluate({"key": np.array(["off", "peak"])}, {}, tables, 2), [2.0, 1.0], 2)


def test_constant_expressions_broadcast_and_results_are_new_arrays() -> None:
    assert_values(run("2 + 3", rows=4), [5.0] * 4, 4)
    assert run("k", rows=0).shape == (0,)
    result = run("a")
    result[0] = 99.0
    assert A[0] == 3.0  # the input column was not handed back


def test_numeric_columns_may_be_sequences_with_none_or_integers() -> None:
    columns = {"x": [1, None, 3.5], "y": np.array([1, 2, 3], dtype=np.int64), "z": np.array([True, False, True])}
    assert_values(run("x + y + z", columns, rows=3), [3.0, NAN, 7.5], 3)


# --- limits ---------------------------------------------------------------------------------


def test_length_limit() -> None:
    assert parse("a" * MAX_LENGTH).names() == {"a" * MAX_LENGTH}
    with pytest.raises(ExpressionError) as caught:
        parse("a" * (MAX_LENGTH + 1))
    assert caught.value.position == MAX_LENGTH
    assert caught.value.reason == "expression longer than 1000 characters"


@pytest.mark.parametrize(
    ("make", "error_position"),
    [
        (lambda n: "(" * n + "a" + ")" * n, lambda n: n - 1),
        (lambda n: "-" * n + "a", lambda n: n - 1),
        (lambda n: "not " * n + "a", lambda n: 4 * (n - 1)),
        (lambda n: "abs(" * n + "a" + ")" * n, lambda n: 4 * n - 1),
        (lambda n: "2 ^ " * n + "2", lambda n: 4 * n - 2),
    ],
    ids=["parentheses", "minus", "not", "calls", "powers"],
)
def test_nesting_limit(make: Any, error_position: Any) -> None:
    parse(make(MAX_DEPTH))
    with pytest.raises(ExpressionError) as caught:
        parse(make(MAX_DEPTH + 1))
    assert caught.value.position == error_position(MAX_DEPTH + 1)
    assert caught.value.reason == "expression nested more than 50 levels deep"


def test_deep_nesting_is_an_expression_error_not_a_recursion_error() -> None:
    with pytest.raises(ExpressionError, match="nested more than 50 levels"):
        parse("(" * 499 + "a" + ")" * 499)


def test_node_limit() -> None:
    hundred = "+".join(["a"] * 100)  # 100 names and 99 operators
    assert parse("-" + hundred).evaluate({"a": np.ones(1)}, {}, {}, 1)[0] == 98.0  # exactly 200 nodes
    with pytest.raises(ExpressionError) as caught:
        parse(hundred + "+a")
    assert caught.value.position == len(hundred)  # the operator that makes node 201
    assert caught.value.reason.startswith(f"expression too large (more than {MAX_NODES}")


# --- dependencies ---------------------------------------------------------------------------


def test_dependencies_order_derived_fields_after_what_they_use() -> None:
    derived = {name: parse(text) for name, text in
               {"d": "c + b", "c": "b * 2 + tariff[a]", "b": "a + x", "e": "x"}.items()}
    order = dependencies(derived)
    assert sorted(order) == ["b", "c", "d", "e"]  # each once; "a" and "x" are not derived
    assert order.index("b") < order.index("c") < order.index("d")
    assert dependencies({}) == []


@pytest.mark.parametrize(
    ("texts", "cycles"),
    [
        ({"a": "b + 1", "b": "a * 2"}, {"a -> b -> a", "b -> a -> b"}),
        ({"a": "a + 1"}, {"a -> a"}),
        ({"x": "1", "a": "b + x", "b": "c", "c": "max(a, x)"}, {"a -> b -> c -> a", "b -> c -> a -> b",
                                                                 "c -> a -> b -> c"}),
    ],
)
def test_dependencies_name_the_cycle(texts: dict[str, str], cycles: set[str]) -> None:
    with pytest.raises(ExpressionError) as caught:
        dependencies({name: parse(text) for name, text in texts.items()})
    assert caught.value.position is None
    assert caught.value.reason.removeprefix("cycle between derived fields: ") in cycles
    assert str(caught.value) == caught.value.reason


# --- no Python evaluation -------------------------------------------------------------------


def test_the_module_never_hands_text_to_python() -> None:
    source = Path(shared.expressions.__file__).read_text()
    tree = ast.parse(source)  # the module's own source, read by the test
    forbidden_calls = {"eval", "exec", "compile", "__import__", "literal_eval", "breakpoint"}
    forbidden_modules = {"ast", "code", "codeop", "builtins", "importlib", "pickle", "marshal"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            assert node.id not in forbidden_calls, f"line {node.lineno} uses {node.id}"
        if isinstance(node, ast.Attribute) and node.attr in forbidden_calls:
            # re.compile builds a regular expression from a constant pattern; nothing else may.
            assert node.attr == "compile" and isinstance(node.value, ast.Name) and node.value.id == "re"
        if isinstance(node, ast.Import):
            assert not {alias.name.split(".")[0] for alias in node.names} & forbidden_modules
        if isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] not in forbidden_modules
    compiles = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                and n.func.attr == "compile"]
    assert compiles and all(isinstance(arg, ast.Constant) for call in compiles for arg in call.args)


# --- property: the parser agrees with a reference evaluator over Python floats ---------------
#
# Two generators: trees (printed with only the parentheses precedence needs, plus explicit
# extra ones) and flat chains of operators without parentheses. The module parses and
# evaluates the text; `reference` evaluates the tree directly (for chains, the tree an
# operator-stack algorithm builds from the documented precedence table). The operations are
# those whose float results do not depend on the maths library: + - * / % sqrt abs min max
# clip round if, comparisons, logic, lookups, and ^ with exponents 0, 1 and 2 (numpy computes
# x^2 as x*x). log and exp are covered by the tables above.

KEYS = ["x", "y", "w", None, True, False]
P_CONSTANTS = {"k": 3.0, "z": 0.0, "h": 0.5}
P_TABLES = {"t": {"x": 1.5, "y": -2.0, "true": 4.0}, "d": {"x": 1.0, "*": 9.0}}
COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
           "!=": operator.ne}
# The precedence levels of the module docstring, loosest first.
LEVEL = {"or": 1, "and": 2, "not": 3, **dict.fromkeys(COMPARE, 4), "+": 5, "-": 5, "*": 6, "/": 6, "%": 6,
         "neg": 7, "^": 8}
ATOM = 9
ROWS_P = 4

numbers = st.one_of(
    st.integers(0, 20).map(lambda i: ("num", float(i), str(i))),
    st.floats(0, 1000, allow_nan=False).map(lambda v: ("num", v, repr(v))),
    st.sampled_from([("num", 0.5, ".5"), ("num", 0.001, "1e-3"), ("num", 2500.0, "2.5E3"), ("num", 1e300, "1e300")]),
)
columns = st.sampled_from(["a", "b", "c"]).map(lambda name: ("name", name))
leaves = st.one_of(
    numbers,
    columns,
    columns,
    st.sampled_from(sorted(P_CONSTANTS)).map(lambda name: ("name", name)),
    st.sampled_from(sorted(P_TABLES)).map(lambda table: ("lookup", table)),
)
exponents = st.sampled_from([("num", 0.0, "0"), ("num", 1.0, "1"), ("num", 2.0, "2"), ("num", 2.0, "2.0")])

# Each kind of node with its number of operands; a tree draws a number of operators and
# spends them, so every example is operator-dense.
KINDS = [
    *[(("bin", op), 2) for op in ["+", "-", "*", "/", "%", *COMPARE, "and", "or"]],
    (("call", "min"), 2), (("call", "max"), 3), (("call", "clip"), 3), (("call", "if"), 3),
    (("call", "abs"), 1), (("call", "sqrt"), 1), (("call", "round"), 1), (("round2",), 1),
    (("neg",), 1), (("neg",), 1), (("not",), 1), (("paren",), 1), (("pow",), 1),
]


@st.composite
def trees(draw: st.DrawFn, max_operators: int = 10) -> tuple:
    def build(operators: int) -> tuple:
        if operators == 0:
            return draw(leaves)
        kind, arity = draw(st.sampled_from(KINDS))
        sizes, left = [], operators - 1
        for _ in range(arity - 1):
            sizes.append(draw(st.integers(0, left)))
            left -= sizes[-1]
        children = [build(size) for size in [*sizes, left]]
        match kind:
            case ("bin", op):
                return ("bin", op, *children)
            case ("call", function):
                return ("call", function, children)
            case ("round2",):
                return ("round2", children[0], draw(st.sampled_from([-1, 0, 1, 2])))
            case ("pow",):
                return ("bin", "^", children[0], draw(exponents))
        return (kind[0], children[0])

    return build(draw(st.integers(1, max_operators)))


def render(tree: tuple) -> tuple[str, int]:
    """The tree as text, and the precedence level of its outermost operator."""

    def operand(child: tuple, minimum: int) -> str:
        text, level = render(child)
        return text if level >= minimum else f"({text})"

    match tree:
        case ("num", _, text):
            return text, ATOM
        case ("name", name):
            return name, ATOM
        case ("lookup", table):
            return f"{table}[key]", ATOM
        case ("paren", child):
            return f"({render(child)[0]})", ATOM
        case ("neg", child):
            return "-" + operand(child, LEVEL["neg"]), LEVEL["neg"]
        case ("not", child):
            return "not " + operand(child, LEVEL["not"]), LEVEL["not"]
        case ("bin", op, left, right):
            level = LEVEL[op]
            if op in COMPARE:  # non-associative: sums on both sides
                left_min, right_min = LEVEL["+"], LEVEL["+"]
            elif op == "^":  # right-associative: an atom on the left, a unary operand on the right
                left_min, right_min = ATOM, LEVEL["neg"]
            else:  # left-associative
                left_min, right_min = level, level + 1
            return f"{operand(left, left_min)} {op} {operand(right, right_min)}", level
        case ("call", function, args):
            return f"{function}({', '.join(render(arg)[0] for arg in args)})", ATOM
        case ("round2", child, digits):
            return f"round({render(child)[0]}, {digits})", ATOM
    raise AssertionError(tree)


def boolean(result: bool, *operands: float) -> float:
    return NAN if any(math.isnan(x) for x in operands) else float(result)


def divide(x: float, y: float) -> float:
    if y == 0:
        return NAN if x == 0 or math.isnan(x) else math.copysign(math.inf, x) * math.copysign(1.0, y)
    return x / y


def power(x: float, e: float) -> float:
    if math.isnan(x) or math.isnan(e):
        return NAN
    assume(e in (0.0, 1.0, 2.0))  # other exponents go through the maths library (a chain 2 ^ 2 gives 4)
    return {0.0: 1.0, 1.0: x, 2.0: x * x}[e]


def rounded(x: float, digits: int) -> float:
    """numpy's documented rounding: scale by 10^digits, round half to even, scale back."""
    if not math.isfinite(x) or (digits >= 0 and abs(x) >= 2.0**52):
        return x
    # Python's round() answers an int and so loses the sign of a zero; rint keeps it.
    if digits >= 0:
        scaled = x * 10.0**digits
        return math.copysign(round(scaled), scaled) / 10.0**digits
    scaled = x / 10.0**-digits
    return math.copysign(round(scaled), scaled) * 10.0**-digits


ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": divide, "^": power,
              "%": lambda x, y: NAN if math.isnan(x) or math.isnan(y) or y == 0 else x % y}


def reference(tree: tuple, row: dict[str, Any]) -> float:
    def value(child: tuple) -> float:
        return reference(child, row)

    match tree:
        case ("num", number, _):
            return number
        case ("name", name):
            return row[name] if name in row else P_CONSTANTS[name]
        case ("lookup", table):
            key = row["key"]
            if key is None:
                return NAN
            key = ("true" if key else "false") if isinstance(key, bool) else key
            return P_TABLES[table].get(key, P_TABLES[table].get("*", NAN))
        case ("paren", child):
            return value(child)
        case ("neg", child):
            return -value(child)
        case ("not", child):
            x = value(child)
            return boolean(x == 0, x)
        case ("bin", op, left, right):
            x, y = value(left), value(right)
            if op in COMPARE:
                return boolean(COMPARE[op](x, y), x, y)
            if op in ("and", "or"):
                return boolean((x != 0 and y != 0) if op == "and" else (x != 0 or y != 0), x, y)
            return ARITHMETIC[op](x, y)
        case ("call", function, args):
            xs = [value(arg) for arg in args]
            if function == "if":
                return NAN if math.isnan(xs[0]) else (xs[1] if xs[0] != 0 else xs[2])
            if any(math.isnan(x) for x in xs):
                return NAN
            if function in ("min", "max"):
                return (min if function == "min" else max)(xs) + 0.0
            if function == "clip":
                return min(max(xs[0], xs[1]), xs[2]) + 0.0
            if function == "sqrt":
                return NAN if xs[0] < 0 else math.sqrt(xs[0])
            return abs(xs[0]) if function == "abs" else rounded(xs[0], 0)
        case ("round2", child, digits):
            return rounded(value(child), digits)
    raise AssertionError(tree)


finite_values = st.floats(-1000, 1000, allow_nan=False)
column_values = st.one_of(
    finite_values,
    finite_values,
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 3.0, NAN, 1e300, -1e300, math.inf]),
)
rows = st.tuples(
    st.fixed_dictionaries({name: st.lists(column_values, min_size=ROWS_P, max_size=ROWS_P) for name in "abc"}),
    st.lists(st.sampled_from(KEYS), min_size=ROWS_P, max_size=ROWS_P),
)


def assert_agrees(text: str, tree: tuple, data: tuple[dict[str, list], list]) -> None:
    values, keys = data
    expected = np.array([reference(tree, {**{n: v[i] for n, v in values.items()}, "key": keys[i]})
                         for i in range(ROWS_P)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        actual = parse(text).evaluate({**{n: np.array(v) for n, v in values.items()}, "key": keys},
                                      P_CONSTANTS, P_TABLES, ROWS_P)
    assert np.isclose(actual, expected, rtol=1e-9, atol=0.0, equal_nan=True).all(), (text, actual, expected)


@settings(max_examples=300, deadline=None)
@given(tree=trees(), data=rows)
def test_trees_agree_with_the_reference(tree: tuple, data: tuple[dict[str, list], list]) -> None:
    assert_agrees(render(tree)[0], tree, data)


class ChainedComparison(Exception):
    pass


ALPHABETS = [
    ["+", "-"], ["-"], ["*", "/", "%"], ["/"], ["%"], ["^"], ["^", "^", "-"], ["^", "*"],
    ["and", "or"], ["and", "or", "<"], ["+", "*", "<=", "and"], ["==", "-", "or"], ["!=", ">", ">=", "/"],
    ["+", "-", "*", "/", "%", "^", "and", "or", *COMPARE],
]
chain_leaves = st.one_of(numbers, columns, columns, st.sampled_from(sorted(P_CONSTANTS)).map(lambda n: ("name", n)))


@st.composite
def chains(draw: st.DrawFn) -> list[Any]:
    """Operands (leaf trees, each after prefix operators) and infix operators, alternating."""
    # A few operators per chain, so the same ones meet often (where associativity shows).
    operators = draw(st.lists(st.sampled_from(draw(st.sampled_from(ALPHABETS))), min_size=2, max_size=6))
    items: list[Any] = []
    for before in [None, *operators]:
        if before is not None:
            items.append(before)
        if before == "^":
            # Powers stay in 0, 1, 2 (see the section comment); mostly 0 and 1, whose powers are 0 and 1.
            items.append(draw(st.sampled_from([("num", 0.0, "0"), ("num", 1.0, "1"), ("num", 1.0, "1.0"),
                                               ("num", 2.0, "2")])))
        else:
            # 'not' binds looser than comparisons: it may start an operand only after and/or.
            nots = draw(st.integers(0, 2)) if before in (None, "and", "or") else 0
            items += ["not"] * nots + ["-"] * draw(st.integers(0, 2)) + [draw(chain_leaves)]
    return items


def operator_stack_tree(items: list[Any]) -> tuple:
    """The tree of a flat chain by the documented levels, built with an operator stack."""
    output: list[tuple] = []
    stack: list[tuple[str, bool]] = []  # (operator, is prefix)

    def reduce_top() -> None:
        op, prefix = stack.pop()
        if prefix:
            output.append((op, output.pop()))
        else:
            right, left = output.pop(), output.pop()
            output.append(("bin", op, left, right))

    expect_operand = True
    for item in items:
        if expect_operand and item in ("-", "not"):
            stack.append(("neg" if item == "-" else "not", True))
        elif expect_operand:
            output.append(item)
            expect_operand = False
        else:
            while stack and (LEVEL[stack[-1][0]] > LEVEL[item] or (LEVEL[stack[-1][0]] == LEVEL[item]
                                                                  and item != "^")):
                if item in COMPARE and stack[-1][0] in COMPARE:
                    raise ChainedComparison
                reduce_top()
            stack.append((item, False))
            expect_operand = True
    while stack:
        reduce_top()
    return output[0]


@settings(max_examples=600, deadline=None)
@given(items=chains(), data=rows)
def test_chains_follow_the_documented_precedence(items: list[Any], data: tuple[dict[str, list], list]) -> None:
    text = " ".join(item if isinstance(item, str) else render(item)[0] for item in items)
    try:
        tree = operator_stack_tree(items)
    except ChainedComparison:
        with pytest.raises(ExpressionError, match="comparisons cannot be chained"):
            parse(text)
        return
    assert_agrees(text, tree, data)
