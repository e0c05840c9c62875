"""The run search language: MLflow's filter and order-by syntax, parsed into plain records.

``metrics.auc > 0.9 and params.model = 'lgbm' and attributes.status = 'FINISHED'``

- Entities: ``metrics.`` (latest value, numeric comparisons), ``params.`` and ``tags.``
  (strings: ``= != LIKE ILIKE IN NOT IN``), ``attributes.`` (``status``, ``run_name``,
  ``run_id``, ``parent_id`` as strings; ``start_time``, ``end_time`` as epoch ms).
- Keys with other characters are quoted with backticks or double quotes:
  ``metrics.`val loss` < 0.3``.
- Clauses join with ``AND`` only, as in MLflow.

The parser never builds SQL: adapters translate these records with bound parameters.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from shipyard.core.errors import InvalidInputError

Entity = Literal["metric", "param", "tag", "attribute"]
Op = Literal["=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN"]

MAX_FILTER_LENGTH = 4096
MAX_RESULTS_LIMIT = 50_000
_ENTITY_ALIASES: dict[str, Entity] = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
}
STRING_ATTRIBUTES = ("status", "run_name", "run_id", "parent_id", "experiment_id")
NUMERIC_ATTRIBUTES = ("start_time", "end_time")
_NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=")
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")

_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<number>[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?))(?![\w.])
      | (?P<string>'(?:[^'\\]|\\.|'')*')
      | (?P<quoted>`[^`]*`|"(?:[^"\\]|\\.)*")
      | (?P<op><=|>=|!=|<>|==|=|<|>)
      | (?P<punct>[(),.])
      | (?P<word>[A-Za-z_][\w]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Comparison:
    """One clause: ``<entity>.<key> <op> <value>``."""

    entity: Entity
    key: str
    op: Op
    value: float | str | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OrderBy:
    """One sort key; runs missing the key sort last whatever the direction."""

    entity: Entity
    key: str
    ascending: bool


@dataclass(frozen=True, slots=True)
class RunQuery:
    """A validated search: parsed filter and order, the raw text, and paging."""

    filter_text: str
    filter: tuple[Comparison, ...]
    order_by_text: tuple[str, ...]
    order_by: tuple[OrderBy, ...]
    max_results: int
    offset: int
    #: Keyset paging: the sort values (then start time and id) of the previous page's last run.
    after: tuple[Any, ...] | None = None
    page_token: str | None = None


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN_RE.match(text, pos)
        if match is None or match.end() == pos:
            bad = text[pos:].lstrip()[:20]
            at = len(text) - len(text[pos:].lstrip())
            raise InvalidInputError(
                f"filter: unexpected text at position {at}: {bad!r}", value=text, position=at
            )
        kind = match.lastgroup or ""
        tokens.append(_Token(kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return tokens


def _unquote(token: _Token) -> str:
    body = token.text[1:-1]
    if token.text[0] == "'":
        return body.replace("''", "'").replace("\\'", "'").replace("\\\\", "\\")
    if token.text[0] == '"':
        return body.replace('\\"', '"').replace("\\\\", "\\")
    return body


class _Parser:
    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.what = what
        self.tokens = _tokenize(text)
        self.i = 0

    def error(self, expected: str) -> InvalidInputError:
        if self.i < len(self.tokens):
            token = self.tokens[self.i]
            got = f"{token.text!r} at position {token.pos}"
        else:
            got = "end of input"
        return InvalidInputError(f"{self.what}: expected {expected}; got {got}", value=self.text)

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise self.error("more input")
        self.i += 1
        return token

    def at_word(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "word" and token.text.upper() in words

    def identifier(self) -> tuple[Entity, str]:
        first = self.take()
        if first.kind == "quoted":
            # A bare quoted key means a metric, as MLflow reads it.
            return "metric", _unquote(first)
        if first.kind != "word":
            self.i -= 1
            raise self.error("an identifier such as metrics.auc, params.model or tags.team")
        entity = _ENTITY_ALIASES.get(first.text.lower())
        dot = self.peek()
        if entity is None or dot is None or dot.text != ".":
            raise InvalidInputError(
                f"{self.what}: identifier must start with metrics., params., tags. or "
                f"attributes.; got {first.text!r} at position {first.pos}",
                value=self.text,
            )
        self.i += 1
        key_token = self.take()
        if key_token.kind == "quoted":
            key = _unquote(key_token)
        elif key_token.kind in ("word", "number"):
            # Dotted keys such as metrics.val.loss keep reading words joined by dots.
            key = key_token.text
            while (
                self.i + 1 < len(self.tokens)
                and self.tokens[self.i].text == "."
                and self.tokens[self.i + 1].kind == "word"
                and self.tokens[self.i].pos == key_token.pos + len(key)
            ):
                key += "." + self.tokens[self.i + 1].text
                self.i += 2
        else:
            self.i -= 1
            raise self.error("a key after the dot")
        if entity == "attribute" and key not in STRING_ATTRIBUTES + NUMERIC_ATTRIBUTES:
            allowed = ", ".join(STRING_ATTRIBUTES + NUMERIC_ATTRIBUTES)
            raise InvalidInputError(
                f"{self.what}: attribute must be one of {allowed}; got {key!r}", value=self.text
            )
        return entity, key


def _is_numeric(entity: Entity, key: str) -> bool:
    return entity == "metric" or (entity == "attribute" and key in NUMERIC_ATTRIBUTES)


def parse_filter(text: str | None) -> tuple[Comparison, ...]:
    """Parse a filter string into comparisons; an empty filter matches every run."""
    if text is None or not text.strip():
        return ()
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidInputError(
            f"filter must be at most {MAX_FILTER_LENGTH} characters; got {len(text)}",
            value=text[:60],
        )
    parser = _Parser(text, "filter")
    clauses: list[Comparison] = []
    while True:
        entity, key = parser.identifier()
        clauses.append(_comparison(parser, entity, key))
        if parser.peek() is None:
            return tuple(clauses)
        if parser.at_word("OR"):
            raise InvalidInputError(
                "filter: only AND joins clauses (as in MLflow); got 'OR'", value=text
            )
        if not parser.at_word("AND"):
            raise parser.error("AND or the end of the filter")
        parser.i += 1


def _comparison(parser: _Parser, entity: Entity, key: str) -> Comparison:
    numeric = _is_numeric(entity, key)
    op_token = parser.peek()
    if op_token is None:
        raise parser.error("a comparison operator")
    op: str
    if op_token.kind == "op":
        op = {"==": "=", "<>": "!="}.get(op_token.text, op_token.text)
        parser.i += 1
    elif parser.at_word("LIKE", "ILIKE", "IN"):
        op = op_token.text.upper()
        parser.i += 1
    elif parser.at_word("NOT"):
        parser.i += 1
        if not parser.at_word("IN"):
            raise parser.error("IN after NOT")
        parser.i += 1
        op = "NOT IN"
    else:
        raise parser.error("a comparison operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN)")
    allowed = _NUMERIC_OPS if numeric else _STRING_OPS
    if op not in allowed:
        kind = "numeric" if numeric else "string"
        raise InvalidInputError(
            f"filter: operator for {kind} {entity} {key!r} must be one of "
            f"{', '.join(allowed)}; got {op!r}",
            value=parser.text,
        )
    if op in ("IN", "NOT IN"):
        return Comparison(entity, key, op, _string_tuple(parser))  # type: ignore[arg-type]
    value_token = parser.take()
    if numeric:
        if value_token.kind != "number":
            parser.i -= 1
            raise parser.error(f"a number to compare {entity} {key!r} with")
        return Comparison(entity, key, op, float(value_token.text))  # type: ignore[arg-type]
    if value_token.kind not in ("string", "quoted") or value_token.text.startswith("`"):
        parser.i -= 1
        raise parser.error(f"a quoted string to compare {entity} {key!r} with")
    return Comparison(entity, key, op, _unquote(value_token))  # type: ignore[arg-type]


def _string_tuple(parser: _Parser) -> tuple[str, ...]:
    if parser.take().text != "(":
        parser.i -= 1
        raise parser.error("'(' to open the IN list")
    values: list[str] = []
    while True:
        token = parser.take()
        if token.kind != "string":
            parser.i -= 1
            raise parser.error("a quoted string in the IN list")
        values.append(_unquote(token))
        closing = parser.take()
        if closing.text == ")":
            return tuple(values)
        if closing.text != ",":
            parser.i -= 1
            raise parser.error("',' or ')' in the IN list")


def parse_order_by(items: list[str] | tuple[str, ...] | None) -> tuple[OrderBy, ...]:
    """Parse ``["metrics.auc DESC", "attributes.start_time"]`` into sort keys."""
    orders: list[OrderBy] = []
    for item in items or ():
        if not isinstance(item, str) or not item.strip():
            raise InvalidInputError(f"order_by entries must be non-empty strings; got {item!r}")
        parser = _Parser(item, "order_by")
        entity, key = parser.identifier()
        ascending = True
        if parser.at_word("ASC", "DESC"):
            ascending = parser.take().text.upper() == "ASC"
        if parser.peek() is not None:
            raise parser.error("ASC, DESC or the end of the order clause")
        orders.append(OrderBy(entity, key, ascending))
    return tuple(orders)


def encode_page_token(offset: int) -> str:
    """Return an opaque token for the page that starts at ``offset`` (older clients')."""
    raw = json.dumps({"offset": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def encode_keyset_token(order: tuple[str, ...], after: list[Any]) -> str:
    """An opaque token for the page after the run whose sort values are ``after``.

    Keyset paging: the next page starts where the last one ended, in SQL, so a page deep in
    100,000 runs costs what the first does, and a run inserted meanwhile moves nothing.
    """
    raw = json.dumps({"after": after, "order": list(order)}, allow_nan=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(
    token: str | None, order: tuple[str, ...] = ()
) -> tuple[int, tuple[Any, ...] | None]:
    """(offset, keyset values) a page token stands for; None means the first page."""
    if not token:
        return 0, None
    bad = InvalidInputError(f"page_token is not valid; got {token[:60]!r}")
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise bad from exc
    if not isinstance(data, dict):
        raise bad
    if "after" in data:
        after = data["after"]
        if not isinstance(after, list) or not all(
            v is None or isinstance(v, str | int | float) for v in after
        ):
            raise bad
        if len(after) != len(order) + 2 or data.get("order") != list(order):
            raise InvalidInputError(
                "page_token belongs to a search with another order_by; start from the first page"
            )
        return 0, tuple(after)
    offset = data.get("offset")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise bad
    return offset, None


def build_query(
    filter_text: str | None,
    order_by: list[str] | tuple[str, ...] | None,
    max_results: int,
    page_token: str | None,
) -> RunQuery:
    """Validate every part of a search and return it as one record."""
    if isinstance(max_results, bool) or not isinstance(max_results, int):
        raise InvalidInputError(f"max_results must be an integer; got {max_results!r}")
    if not 1 <= max_results <= MAX_RESULTS_LIMIT:
        raise InvalidInputError(
            f"max_results must be between 1 and {MAX_RESULTS_LIMIT}; got {max_results}"
        )
    orders = parse_order_by(order_by)
    offset, after = decode_page_token(page_token, tuple(order_by or ()))
    return RunQuery(
        filter_text=filter_text or "",
        filter=parse_filter(filter_text),
        order_by_text=tuple(order_by or ()),
        order_by=orders,
        max_results=max_results,
        offset=offset,
        after=after,
        page_token=page_token or None,
    )
