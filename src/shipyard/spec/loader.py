"""Reading ``shipyard.yaml``: documents, an environment's overlay, and every error with its
line, so one run of ``shipyard plan`` lists all that is wrong (like ``terraform validate``)."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from shipyard.core.errors import InvalidInputError
from shipyard.core.names import ENV_REF
from shipyard.spec.documents import API_VERSION, KINDS, Document, body_of


class SpecError(InvalidInputError):
    """The spec is invalid; ``errors`` holds every problem, each with its line."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(
            f"the spec has {len(errors)} error(s):\n" + "\n".join(errors), errors=errors
        )
        self.errors = errors


#: Literals that are credentials, whatever field they sit in.
_SECRETS = [
    (re.compile(r"\bshy_[A-Za-z0-9_\-]{20,}"), "a Shipyard API token"),
    (re.compile(r"hooks\.slack\.com/services/\S+"), "a Slack webhook URL"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"), "a Slack token"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"), "a GitHub token"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "an AWS access key"),
    (re.compile(r"://[^/\s:@]+:[^/\s@]+@"), "a password in a URL"),
    (re.compile(r"[?&](token|key|sig|signature|secret|password|api[_-]?key)=", re.I), "a secret"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._\-]{10,}"), "a bearer token"),
]
_SECRET_FIELDS = re.compile(r"(?i)(secret|token|password|passwd|api[_-]?key|credential)")
#: A path segment of a webhook URL that is a random key (the way most webhooks carry one).
_KEY_SEGMENT = re.compile(r"^(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9_\-]{20,}$")


def secret_problem(path: str, value: str) -> str | None:
    """Why ``value`` at ``path`` looks like a secret written into the spec, or None."""
    literal = ENV_REF.sub("", value)
    for pattern, what in _SECRETS:
        if pattern.search(literal):
            return f"{path} holds {what}: put it in an environment variable, as ${{NAME}}"
    field = path.rsplit(".", 1)[-1]
    if _SECRET_FIELDS.search(field) and literal.strip():
        return f"{path} is a secret field with a literal value: write ${{NAME}} instead"
    if field == "url" and "://" in literal:
        for segment in literal.split("://", 1)[1].split("?")[0].split("/")[1:]:
            if _KEY_SEGMENT.match(segment):
                return f"{path} carries a key in its path: put the URL in ${{NAME}}"
    return None


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]")


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the value at ``loc`` under ``node`` (as far as it goes)."""
    found = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            match = node.value[part] if part < len(node.value) else None
        else:
            match = None
        if match is None:
            break
        node, found = match, match.start_mark.line + 1
    return found


def _child(node: yaml.Node, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        return next((v for k, v in node.value if k.value == key), None)
    return None


def read_documents(text: str, source: str = "shipyard.yaml") -> list[tuple[Any, yaml.Node]]:
    """The YAML documents of ``text``, each with its node (for line numbers)."""
    loader = yaml.SafeLoader(text)
    found: list[tuple[Any, yaml.Node]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            found.append((loader.construct_document(node), node))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise SpecError([f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    finally:
        loader.dispose()
    return found


def _merge(base: Any, patch: Any) -> Any:
    """``patch`` over ``base``: mappings merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = _merge(base.get(key), value) if key in base else value
        return merged
    return copy.deepcopy(patch)


#: Kinds a spec file may hold that are read where they are used, never applied to the store:
#: edge targets (``shipyard edge export --target``).
FILE_ONLY = ("EdgeTarget", "FederatedJob")


def parse_spec(
    text: str, source: str = "shipyard.yaml", environment: str | None = None
) -> list[Document]:
    """The checked documents of a spec, with ``environment``'s patches applied.

    Raises:
        SpecError: with every problem found, each prefixed by ``source:line``.
    """
    errors: list[str] = []
    raw: list[tuple[dict[str, Any], yaml.Node]] = []
    environments: dict[str, list[dict[str, Any]]] = {}
    for data, node in read_documents(text, source):
        line = node.start_mark.line + 1
        if data is None:
            continue
        if not isinstance(data, dict):
            errors.append(f"{source}:{line}: a document is a mapping with apiVersion and kind")
            continue
        if data.get("apiVersion") != API_VERSION:
            errors.append(
                f"{source}:{_line_of(node, ('apiVersion',))}: apiVersion must be {API_VERSION}"
            )
            continue
        kind = data.get("kind")
        if kind == "Environment":
            name = (data.get("metadata") or {}).get("name")
            patches = (data.get("spec") or {}).get("patches") or []
            if not isinstance(name, str) or not isinstance(patches, list):
                errors.append(
                    f"{source}:{line}: an Environment needs metadata.name and spec.patches"
                )
                continue
            environments[name] = patches
            continue
        if kind in FILE_ONLY:
            continue
        if kind not in KINDS:
            errors.append(
                f"{source}:{_line_of(node, ('kind',))}: unknown kind {kind!r}; "
                f"use one of {', '.join(KINDS)}, {', '.join(FILE_ONLY)} or Environment"
            )
            continue
        raw.append((data, node))
    if environment is not None and environment not in environments:
        known = ", ".join(sorted(environments)) or "none"
        errors.append(f"{source}: no Environment named {environment!r} (declared: {known})")
    docs: list[Document] = []
    seen: dict[tuple[str, str], int] = {}
    patches = environments.get(environment or "", []) if environment else []
    for data, node in raw:
        line = node.start_mark.line + 1
        extra = set(data) - {"apiVersion", "kind", "metadata", "spec"}
        if extra:
            errors.append(f"{source}:{line}: unknown field(s) {', '.join(sorted(extra))}")
            continue
        kind = str(data["kind"])
        meta = data.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        if not isinstance(name, str) or not name:
            errors.append(f"{source}:{line}: {kind} needs metadata.name")
            continue
        key = (kind, name)
        if key in seen:
            errors.append(
                f"{source}:{line}: {kind}/{name} is declared twice (first at line {seen[key]})"
            )
            continue
        seen[key] = line
        body = data.get("spec") or {}
        deleted = False
        for patch in patches:
            if isinstance(patch, dict) and (patch.get("kind"), patch.get("name")) == key:
                deleted = deleted or bool(patch.get("delete"))
                body = _merge(body, patch.get("spec") or {})
        if deleted:
            continue
        for path, value in _strings(body, f"{kind}/{name}.spec"):
            problem = secret_problem(path, value)
            if problem:
                sub = tuple(
                    int(p) if p.isdigit() else p
                    for p in re.split(r"[.\[\]]+", path.split(".spec", 1)[1])
                    if p
                )
                errors.append(f"{source}:{_line_of(_child(node, 'spec'), sub)}: {problem}")
        try:
            checked = body_of(kind, name, body)
        except ValidationError as exc:
            spec_node = _child(node, "spec")
            for err in exc.errors():
                loc = tuple(err.get("loc", ()))
                where = ".".join(str(p) for p in loc if not str(p).startswith("function-"))
                msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
                at = _line_of(spec_node, loc) if spec_node is not None else line
                errors.append(f"{source}:{at}: {kind}/{name}: {where + ': ' if where else ''}{msg}")
            continue
        docs.append(Document(kind=kind, name=name, body=checked, line=line))
    errors += _references(docs, source)
    if errors:
        raise SpecError(errors)
    return docs


def _references(docs: list[Document], source: str) -> list[str]:
    """Rules across documents: an alert rule's monitor and notifiers must be declared."""
    monitors = {d.name for d in docs if d.kind == "Monitor"}
    notifiers = {d.name for d in docs if d.kind == "Notifier"}
    found = []
    for doc in docs:
        if doc.kind != "AlertRule":
            continue
        where = f"{source}:{doc.line}: AlertRule/{doc.name}"
        if doc.body["monitor"] not in monitors:
            found.append(f"{where}: no Monitor {doc.body['monitor']!r} in the spec")
        found += [
            f"{where}: no Notifier {name!r} in the spec"
            for name in doc.body.get("notify", [])
            if name not in notifiers
        ]
    return found


def recheck(items: list[dict[str, Any]], source: str = "request") -> list[Document]:
    """Documents sent as (kind, name, body), checked again as a file would be (a server
    trusts no client's checking): bodies, secrets and references."""
    errors: list[str] = []
    docs: list[Document] = []
    seen: set[tuple[str, str]] = set()
    for i, item in enumerate(items):
        kind, name, body = item.get("kind"), item.get("name"), item.get("body")
        where = f"{source}: document {i + 1}"
        if kind not in KINDS or not isinstance(name, str) or not isinstance(body, dict):
            errors.append(f"{where}: needs a known kind, a name and a body")
            continue
        if (kind, name) in seen:
            errors.append(f"{where}: {kind}/{name} is declared twice")
            continue
        seen.add((kind, name))
        errors += [
            f"{where}: {problem}"
            for path, value in _strings(body, f"{kind}/{name}.spec")
            if (problem := secret_problem(path, value))
        ]
        try:
            docs.append(Document(kind=kind, name=name, body=body_of(kind, name, body), line=i + 1))
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err.get("loc", ()))
                msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
                errors.append(f"{where}: {kind}/{name}: {loc + ': ' if loc else ''}{msg}")
    errors += _references(docs, source)
    if errors:
        raise SpecError(errors)
    return docs


def load_spec(path: str | Path, environment: str | None = None) -> list[Document]:
    """The checked documents of a spec file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"cannot read spec {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInputError(f"spec {file} is not UTF-8 text") from None
    return parse_spec(text, str(file), environment)


def dump_spec(docs: list[Document]) -> str:
    """Documents as multi-document YAML, in apply order, the way ``export`` writes them."""
    order = {kind: i for i, kind in enumerate(KINDS)}
    parts = []
    for doc in sorted(docs, key=lambda d: (order[d.kind], d.name)):
        data = {
            "apiVersion": API_VERSION,
            "kind": doc.kind,
            "metadata": {"name": doc.name},
            "spec": doc.body,
        }
        parts.append(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return "---\n".join(parts)
