"""The metric names the Grafana dashboards query, read from their JSON.

    python -m deploy.dashboards      # one line per metric name and the dashboards using it

Used by the tests to check every name against what the services expose, and
by people checking a rename in a service against the dashboards.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DASHBOARD_DIR = Path(__file__).resolve().parent / "grafana" / "dashboards"

# Words of PromQL that look like metric names but are not.
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless",
     "inf", "nan", "atan2"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])")


def metric_names(expr: str) -> set[str]:
    """Metric names in one PromQL expression (functions, keywords, label names
    and Grafana variables left out)."""
    text = _STRING.sub('""', expr)
    text = _VARIABLE.sub("1", text)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _LABEL_LIST.sub("", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name = match.group(1)
        rest = text[match.end():].lstrip()
        if rest.startswith("(") or name.lower() in _KEYWORDS:
            continue  # a function call or an operator word
        if re.fullmatch(r"\d.*|[eE]\d+", name):
            continue
        names.add(name)
    return names


_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^()]*)\)")
_MATCHER_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
# Labels Prometheus adds at scrape time or that histograms carry by design.
TARGET_LABELS = frozenset({"job", "instance", "le", "__name__"})


def label_names(expr: str) -> set[str]:
    """Labels an expression groups by or matches on, which the queried
    metrics must carry for the panel to show anything."""
    text = _STRING.sub('""', expr)
    labels: set[str] = set()
    for group in _GROUPING.findall(text):
        labels.update(part.strip() for part in group.split(",") if part.strip())
    for matchers in re.findall(r"\{([^{}]*)\}", text):
        labels.update(_MATCHER_LABEL.findall(matchers))
    return labels - TARGET_LABELS


def iter_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries(path: Path) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of every panel of a dashboard file."""
    dashboard = json.loads(path.read_text())
    queries = []
    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if expr:
                queries.append((panel.get("title", "?"), expr))
    return queries


def template_queries(path: Path) -> list[str]:
    """The dashboard's variables as PromQL: label_values(metric{...}, label)
    becomes ``group by (label) (metric{...})``, which needs the same series."""
    dashboard = json.loads(path.read_text())
    queries = []
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if variable.get("type") != "query" or not query:
            continue
        values = re.fullmatch(r"\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*", query, re.S)
        result = re.fullmatch(r"\s*query_result\((.*)\)\s*", query, re.S)
        if values:
            queries.append(f"group by ({values.group(2)}) ({values.group(1)})")
        elif result:
            queries.append(result.group(1))
    return queries


def dashboard_files(directory: Path = DASHBOARD_DIR) -> list[Path]:
    return sorted(directory.glob("*.json"))


def names_by_dashboard(directory: Path = DASHBOARD_DIR) -> dict[str, set[str]]:
    """Metric name -> the dashboards (file stems) that query it."""
    used: dict[str, set[str]] = {}
    for path in dashboard_files(directory):
        exprs = [expr for _, expr in panel_queries(path)] + template_queries(path)
        for expr in exprs:
            for name in metric_names(expr):
                used.setdefault(name, set()).add(path.stem)
    return used


def main() -> int:
    for name, dashboards in sorted(names_by_dashboard().items()):
        print(f"{name}\t{','.join(sorted(dashboards))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
