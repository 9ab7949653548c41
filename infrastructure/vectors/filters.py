"""OpenAI-style attribute filters evaluated in Python (the in-memory and SQLite adapters; pgvector does the same
in SQL, and the contract suite holds them to each other).

- ``eq`` / ``in``: the attribute has the value's type (string, number, boolean; 1 and 1.0 are the same number)
  and is equal to it (to one of them);
- ``ne`` / ``nin``: the negation, so a chunk without the attribute matches;
- ``gt`` / ``gte`` / ``lt`` / ``lte``: attribute and value are both numbers or both strings (compared by code
  point); anything else (a boolean, a missing attribute, mixed types) does not match;
- ``and`` of no filter matches everything, ``or`` of none nothing.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from domain.vectors.model import (
    AttributeFilter,
    AttributeValue,
    Comparison,
    ComparisonOperator,
    CompoundOperator,
)

_ORDER: dict[ComparisonOperator, Callable[[Any, Any], bool]] = {
    ComparisonOperator.GT: operator.gt,
    ComparisonOperator.GTE: operator.ge,
    ComparisonOperator.LT: operator.lt,
    ComparisonOperator.LTE: operator.le,
}


def _kind(value: object) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def _equal(attribute: object, value: object) -> bool:
    kind = _kind(attribute)
    return kind is not None and kind == _kind(value) and attribute == value


def _compare(comparison: Comparison, attributes: Mapping[str, AttributeValue]) -> bool:
    attribute = attributes.get(comparison.key)
    value = comparison.value
    values = value if isinstance(value, tuple) else (value,)
    match comparison.operator:
        case ComparisonOperator.EQ | ComparisonOperator.IN:
            return any(_equal(attribute, v) for v in values)
        case ComparisonOperator.NE | ComparisonOperator.NIN:
            return not any(_equal(attribute, v) for v in values)
    kind = _kind(attribute)
    if kind not in ("number", "string") or kind != _kind(value):
        return False
    return _ORDER[comparison.operator](attribute, value)


def matches(attribute_filter: AttributeFilter | None, attributes: Mapping[str, AttributeValue]) -> bool:
    """Whether a chunk with ``attributes`` passes the filter (``None`` passes everything)."""
    if attribute_filter is None:
        return True
    if isinstance(attribute_filter, Comparison):
        return _compare(attribute_filter, attributes)
    parts = (matches(part, attributes) for part in attribute_filter.filters)
    return all(parts) if attribute_filter.operator is CompoundOperator.AND else any(parts)
