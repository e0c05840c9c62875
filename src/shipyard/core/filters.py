"""The small filter language of MLflow's searches other than runs' (experiments, models).

``name LIKE 'fraud%' AND tags.team = 'risk'``: clauses joined by AND, each a field, one
of ``= != LIKE ILIKE`` and a quoted string. Runs use Shipyard's full search language.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from shipyard.core.errors import InvalidInputError

Clause = tuple[str, str, str]
_QUOTES = '`"'

_CLAUSE = re.compile(
    r"^\s*(?:attributes?\.)?(?P<field>tags?\.(?:`[^`]+`|\"[^\"]+\"|[\w.\-/ ]+?)|\w+)\s*"
    r"(?P<op>=|!=|LIKE|ILIKE)\s*'(?P<value>(?:[^']|'')*)'\s*$",
    re.IGNORECASE,
)


def parse(text: str | None, fields: set[str], *, tags: bool = False) -> list[Clause]:
    """Clauses ``(field, OP, value)``; tag fields come back as ``tags.<key>``.

    Raises:
        InvalidInputError: a clause names another field or is not of this form.
    """
    clauses: list[Clause] = []
    for part in re.split(r"\s+AND\s+", text or "", flags=re.IGNORECASE):
        if not part.strip():
            continue
        match = _CLAUSE.match(part)
        field = match.group("field") if match else ""
        is_tag = field.lower().startswith(("tag.", "tags."))
        if match is None or (field.lower() not in fields and not (is_tag and tags)):
            known = ", ".join(sorted(fields | ({"tags.<key>"} if tags else set())))
            raise InvalidInputError(
                f"unsupported filter {part.strip()[:120]!r}: Shipyard filters on {known} "
                "with =, !=, LIKE and ILIKE"
            )
        name = "tags." + field.split(".", 1)[1].strip(_QUOTES) if is_tag else field.lower()
        clauses.append((name, match.group("op").upper(), match.group("value").replace("''", "'")))
    return clauses


def _like(pattern: str, value: str, fold: bool) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    flags = re.DOTALL | (re.IGNORECASE if fold else 0)
    return re.fullmatch(regex, value, flags) is not None


def matches(values: Mapping[str, str | None], clauses: list[Clause]) -> bool:
    """Tell whether a record's values satisfy every clause (a missing value never does)."""
    for field, op, expected in clauses:
        value = values.get(field)
        if value is None:
            return False
        if op in ("LIKE", "ILIKE"):
            if not _like(expected, value, op == "ILIKE"):
                return False
        elif (value == expected) != (op == "="):
            return False
    return True
