"""Attribute filters as SQL over a JSONB column (PostgreSQL), with the semantics of ``filters.matches``.

Keys and values are always bound parameters; only operators and the parameter names are written into the SQL.
"""

from __future__ import annotations

import json
from typing import Any

from domain.vectors.model import AttributeFilter, AttributeValue, Comparison, ComparisonOperator, CompoundOperator

_ORDER_SQL = {
    ComparisonOperator.GT: ">",
    ComparisonOperator.GTE: ">=",
    ComparisonOperator.LT: "<",
    ComparisonOperator.LTE: "<=",
}


class SqlFilter:
    """Builds one ``WHERE`` fragment, collecting its parameters in ``params``."""

    def __init__(self, column: str = "attributes") -> None:
        self.column = column
        self.params: dict[str, Any] = {}

    def _bind(self, value: Any) -> str:
        name = f"f{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def sql(self, attribute_filter: AttributeFilter | None) -> str:
        if attribute_filter is None:
            return "true"
        if isinstance(attribute_filter, Comparison):
            return self._comparison(attribute_filter)
        if not attribute_filter.filters:
            return "true" if attribute_filter.operator is CompoundOperator.AND else "false"
        joiner = " AND " if attribute_filter.operator is CompoundOperator.AND else " OR "
        return "(" + joiner.join(self.sql(part) for part in attribute_filter.filters) + ")"

    def _attribute(self, key: str, *, as_text: bool = False) -> str:
        return f"({self.column} {'->>' if as_text else '->'} CAST({self._bind(key)} AS text))"

    def _equal(self, key: str, value: AttributeValue) -> str:
        # jsonb equality is typed (1 = 1.0, "1" <> 1, true <> 1) like ``filters._equal``; a missing key is NULL.
        return f"{self._attribute(key)} = CAST({self._bind(json.dumps(value))} AS jsonb)"

    def _comparison(self, comparison: Comparison) -> str:
        value = comparison.value
        values = value if isinstance(value, tuple) else (value,)
        match comparison.operator:
            case ComparisonOperator.EQ | ComparisonOperator.IN:
                return self._any_equal(comparison.key, values)
            case ComparisonOperator.NE | ComparisonOperator.NIN:
                return f"NOT {self._any_equal(comparison.key, values)}"
        operator = _ORDER_SQL[comparison.operator]
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return "false"
        attribute = self._attribute(comparison.key)
        as_text = self._attribute(comparison.key, as_text=True)
        if isinstance(value, str):
            kind, compared = "string", f'{as_text} COLLATE "C" {operator} CAST({self._bind(value)} AS text)'
        else:
            kind, compared = (
                "number",
                f"CAST({as_text} AS float8) {operator} CAST({self._bind(float(value))} AS float8)",
            )
        # CASE, not AND: the cast must not run on a value of another type.
        return f"(CASE WHEN jsonb_typeof({attribute}) = '{kind}' THEN {compared} ELSE false END)"

    def _any_equal(self, key: str, values: tuple[AttributeValue, ...]) -> str:
        if not values:
            return "false"
        return "coalesce(" + " OR ".join(self._equal(key, v) for v in values) + ", false)"
