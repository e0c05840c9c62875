"""Where AutoML's Optuna studies live: beside Shipyard's own tables, in the same database.

Optuna keeps its schema with its own Alembic history, in a table named ``alembic_version``
as Shipyard's is, so the two cannot share one schema. On PostgreSQL the studies get their
own schema in Shipyard's database (``optuna``, or ``<schema>_optuna`` when the store's URI
sets a ``search_path``); a SQLite store keeps them in ``optuna.db`` in its folder. Either
way ``optuna.load_study(study_name=..., storage=...)`` opens them as they are.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from shipyard.core.errors import StoreError
from shipyard.core.settings import sqlite_path

#: The schema (PostgreSQL) or file stem (SQLite) Optuna's tables go in.
STUDY_SCHEMA = "optuna"


def optuna_storage_url(store_uri: str) -> str:
    """The Optuna storage URL for a store's studies, created if it does not exist.

    Raises:
        StoreError: the store is not a database (a server), or the schema cannot be made.
    """
    scheme = store_uri.split("://", 1)[0].lower()
    if scheme.startswith("sqlite"):
        path = sqlite_path(store_uri)
        if path is None:
            raise StoreError("an in-memory SQLite store cannot share its studies with workers")
        return f"sqlite:///{path.parent.resolve() / (STUDY_SCHEMA + '.db')}"
    if scheme.startswith("postgresql"):
        return _postgres_schema(store_uri)
    raise StoreError(
        f"studies live in a database; {store_uri} is not one (through a server, pass "
        "storage= or set SHIPYARD_AUTOML_STORAGE)"
    )


def _postgres_schema(uri: str) -> str:
    import sqlalchemy as sa

    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    base = None
    kept = []
    for key, value in query:
        if key == "options":
            found = re.search(r"-csearch_path=([A-Za-z_][A-Za-z0-9_]*)", unquote(value))
            if found:
                base = found.group(1)
                continue
        kept.append((key, value))
    schema = f"{base}_{STUDY_SCHEMA}" if base else STUDY_SCHEMA
    url = urlunsplit(
        parts._replace(query=urlencode([*kept, ("options", f"-csearch_path={schema}")]))
    )
    engine = sa.create_engine(uri)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"cannot create schema {schema!r} for AutoML studies: {exc}") from exc
    finally:
        engine.dispose()
    return url


def redact(url: str) -> str:
    """A storage URL without its password (it goes in tags and reports)."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
