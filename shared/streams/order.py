"""The order in which a stream's computed columns are computed.

Time parts depend on a datetime field only; a derived field on the columns
its expression names; a rolling statistic on the column it summarises.
Derived and rolling columns may build on each other (the pressure stream's
gap between this hour's mean and the 30-day mean is derived from two rolling
means), so the order is a topological sort over all of them, and a cycle is
a declaration error.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.expressions import Expression
from shared.streams.declaration import DerivedSpec, RollingSpec, StreamSpec, TimePartsSpec


class ComputeCycle(ValueError):
    def __init__(self, path: str, cycle: list[str]) -> None:
        super().__init__(f"cycle between computed columns: {' -> '.join(cycle)}")
        self.path = path


@dataclass(frozen=True)
class Step:
    """One computed column: exactly one of the three specs is set."""

    name: str
    time_parts: TimePartsSpec | None = None
    derived: DerivedSpec | None = None
    expression: Expression | None = None
    rolling: RollingSpec | None = None


def compute_order(spec: StreamSpec, expressions: dict[str, Expression]) -> list[Step]:
    steps: dict[str, Step] = {}
    needs: dict[str, set[str]] = {}
    paths: dict[str, str] = {}
    for i, parts in enumerate(spec.time_parts):
        for part in parts.parts:
            name = parts.column(part)
            steps[name] = Step(name, time_parts=parts)
            needs[name] = set()
            paths[name] = f"time_parts[{i}]"
    for i, derived in enumerate(spec.derived):
        expression = expressions[derived.name]
        steps[derived.name] = Step(derived.name, derived=derived, expression=expression)
        needs[derived.name] = set(expression.names())
        paths[derived.name] = f"derived[{i}].expression"
    for i, rolling in enumerate(spec.rolling):
        steps[rolling.name] = Step(rolling.name, rolling=rolling)
        needs[rolling.name] = {rolling.value}
        paths[rolling.name] = f"rolling[{i}].value"

    ordered: list[Step] = []
    state: dict[str, int] = {}  # 1: being visited, 2: done

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = trail[trail.index(name):] + [name]
            raise ComputeCycle(paths[cycle[0]], cycle)
        state[name] = 1
        for dependency in sorted(needs[name]):
            if dependency in steps:
                visit(dependency, [*trail, name])
        state[name] = 2
        ordered.append(steps[name])

    for name in steps:
        visit(name, [])
    return ordered
