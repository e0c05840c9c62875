"""SqlRegistryStore: the RegistryStore port on SQLAlchemy Core."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from shipyard.core.clock import now_ms
from shipyard.core.errors import ConflictError, NotFoundError, StateTransitionError
from shipyard.core.ids import new_id
from shipyard.registry.models import ModelVersion, RegisteredModel, VersionState
from shipyard.store import schema as t
from shipyard.store.engine import reading, wrap_db_error, write_transaction, writing
from shipyard.store.tracking import upsert

_JSON_FIELDS = ("flavors", "signature", "files", "environment", "card")
_MAX_RETRIES = 5


def _unknown_model(name: str) -> NotFoundError:
    return NotFoundError(f"registered model {name!r} does not exist", model=name)


def _unknown_version(name: str, version: int) -> NotFoundError:
    return NotFoundError(f"model {name!r} has no version {version}", model=name, version=version)


class SqlRegistryStore:
    """Registered models and versions in SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # models -------------------------------------------------------------------------------

    def _model(self, conn: Connection, name: str, *, lock: bool = False) -> RegisteredModel:
        query = select(t.registered_models).where(t.registered_models.c.name == name)
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise _unknown_model(name)
        tags: dict[str, str] = dict(
            conn.execute(
                select(t.model_tags.c.key, t.model_tags.c.value).where(t.model_tags.c.name == name)
            ).all()
        )
        aliases: dict[str, int] = dict(
            conn.execute(
                select(t.model_aliases.c.alias, t.model_aliases.c.version).where(
                    t.model_aliases.c.name == name
                )
            ).all()
        )
        latest = conn.execute(
            select(func.max(t.model_versions.c.version)).where(
                t.model_versions.c.name == name, t.model_versions.c.deleted.is_(False)
            )
        ).scalar()
        return RegisteredModel(
            row.name,
            row.description,
            row.created_at,
            row.updated_at,
            tags,
            aliases,
            latest,
            use_case=row.use_case,
            owner=row.owner,
            risk_tier=row.risk_tier,
            intended_use=row.intended_use,
            approvals_required=int(row.approvals_required),
        )

    def create_model(self, name: str, description: str, tags: dict[str, str]) -> RegisteredModel:
        """Create a model; ConflictError if the name is taken."""
        try:
            with write_transaction(self.engine) as conn:
                self._insert_model(conn, name, description, tags)
                return self._model(conn, name)
        except IntegrityError as exc:  # raced with another creator (PostgreSQL)
            raise ConflictError(f"registered model {name!r} already exists", model=name) from exc
        except SQLAlchemyError as exc:
            raise wrap_db_error(exc, self.engine) from exc

    def _insert_model(
        self, conn: Connection, name: str, description: str, tags: dict[str, str]
    ) -> None:
        exists = conn.execute(
            select(t.registered_models.c.name).where(t.registered_models.c.name == name)
        ).first()
        if exists is not None:
            raise ConflictError(f"registered model {name!r} already exists", model=name)
        now = now_ms()
        conn.execute(
            t.registered_models.insert().values(
                name=name, description=description, created_at=now, updated_at=now
            )
        )
        if tags:
            conn.execute(
                t.model_tags.insert(),
                [{"name": name, "key": k, "value": v} for k, v in tags.items()],
            )

    def get_model(self, name: str) -> RegisteredModel:
        """A model by name, with its tags and aliases."""
        with reading(self.engine) as conn:
            return self._model(conn, name)

    def list_models(self) -> list[RegisteredModel]:
        """Every model by name."""
        with reading(self.engine) as conn:
            names: Any = conn.execute(
                select(t.registered_models.c.name).order_by(t.registered_models.c.name)
            ).scalars()
            return [self._model(conn, n) for n in list(names)]

    def update_model(self, name: str, changes: dict[str, Any]) -> RegisteredModel:
        """Change a model's description or governance fields."""
        with writing(self.engine) as conn:
            done = conn.execute(
                update(t.registered_models)
                .where(t.registered_models.c.name == name)
                .values(**changes, updated_at=now_ms())
            )
            if done.rowcount == 0:
                raise _unknown_model(name)
            return self._model(conn, name)

    def set_model_tag(self, name: str, key: str, value: str | None) -> None:
        """Set a model tag, or delete it when ``value`` is None."""
        with writing(self.engine) as conn:
            self._model(conn, name)
            if value is None:
                conn.execute(
                    delete(t.model_tags).where(
                        t.model_tags.c.name == name, t.model_tags.c.key == key
                    )
                )
                return
            stmt = upsert(conn, t.model_tags).values(name=name, key=key, value=value)
            conn.execute(
                stmt.on_conflict_do_update(index_elements=["name", "key"], set_={"value": value})
            )

    # versions -----------------------------------------------------------------------------

    def _version_row(self, conn: Connection, name: str, version: int) -> Row[Any]:
        row = conn.execute(
            select(t.model_versions).where(
                t.model_versions.c.name == name, t.model_versions.c.version == version
            )
        ).first()
        if row is None:
            self._model(conn, name)  # unknown model says so
            raise _unknown_version(name, version)
        return row

    def _hydrate(self, conn: Connection, rows: list[Row[Any]]) -> list[ModelVersion]:
        if not rows:
            return []
        ids = [r.id for r in rows]
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        for vid, key, value in conn.execute(
            select(
                t.model_version_tags.c.version_id,
                t.model_version_tags.c.key,
                t.model_version_tags.c.value,
            ).where(t.model_version_tags.c.version_id.in_(ids))
        ):
            tags[str(vid)][str(key)] = str(value)
        names = {r.name for r in rows}
        aliases: dict[tuple[str, int], list[str]] = {}
        for name, alias, version in conn.execute(
            select(
                t.model_aliases.c.name, t.model_aliases.c.alias, t.model_aliases.c.version
            ).where(t.model_aliases.c.name.in_(names))
        ):
            aliases.setdefault((str(name), version), []).append(str(alias))  # type: ignore[arg-type]
        out = []
        for r in rows:
            docs = {f: json.loads(getattr(r, f)) for f in _JSON_FIELDS}
            out.append(
                ModelVersion(
                    id=r.id,
                    name=r.name,
                    version=r.version,
                    run_id=r.run_id,
                    artifact_path=r.artifact_path,
                    state=VersionState(r.state),
                    description=r.description,
                    created_by=r.created_by,
                    created_at=r.created_at,
                    updated_at=r.updated_at,
                    deleted=bool(r.deleted),
                    tags=tags[r.id],
                    aliases=sorted(aliases.get((r.name, r.version), [])),
                    **docs,
                )
            )
        return out

    def create_version(self, name: str, fields: dict[str, Any]) -> ModelVersion:
        """Add the next version of ``name`` (creating the model if needed), atomically."""
        for _ in range(_MAX_RETRIES):
            try:
                with write_transaction(self.engine) as conn:
                    return self._create_version(conn, name, fields)
            except IntegrityError:
                # Two writers on PostgreSQL picked the same next number; the loser retries.
                continue
            except SQLAlchemyError as exc:
                raise wrap_db_error(exc, self.engine) from exc
        raise ConflictError(
            f"could not allocate a version number for {name!r}: too many concurrent writers",
            model=name,
        )

    def _create_version(self, conn: Connection, name: str, fields: dict[str, Any]) -> ModelVersion:
        now = now_ms()
        create = upsert(conn, t.registered_models).values(
            name=name, description="", created_at=now, updated_at=now
        )
        conn.execute(create.on_conflict_do_nothing(index_elements=["name"]))
        query = select(t.registered_models.c.name).where(t.registered_models.c.name == name)
        if conn.dialect.name == "postgresql":
            # Serialise version numbering per model (SQLite's write lock already does).
            query = query.with_for_update()
        conn.execute(query)
        latest = conn.execute(
            select(func.max(t.model_versions.c.version)).where(t.model_versions.c.name == name)
        ).scalar()
        number = (latest or 0) + 1
        vid = new_id("mv")
        values = {
            "id": vid,
            "name": name,
            "version": number,
            "run_id": fields["run_id"],
            "artifact_path": fields["artifact_path"],
            "state": VersionState.CANDIDATE.value,
            "description": fields.get("description") or "",
            "created_by": fields.get("created_by") or "local",
            "created_at": now,
            "updated_at": now,
            "deleted": False,
        } | {f: json.dumps(fields.get(f) or ({} if f != "flavors" else [])) for f in _JSON_FIELDS}
        conn.execute(t.model_versions.insert().values(values))
        tags = fields.get("tags") or {}
        if tags:
            conn.execute(
                t.model_version_tags.insert(),
                [{"version_id": vid, "key": k, "value": v} for k, v in tags.items()],
            )
        conn.execute(
            update(t.registered_models)
            .where(t.registered_models.c.name == name)
            .values(updated_at=now)
        )
        return self._hydrate(conn, [self._version_row(conn, name, number)])[0]

    def get_version(self, name: str, version: int) -> ModelVersion:
        """A version (deleted ones too, flagged)."""
        with reading(self.engine) as conn:
            return self._hydrate(conn, [self._version_row(conn, name, version)])[0]

    def list_versions(self, name: str, include_deleted: bool = False) -> list[ModelVersion]:
        """Versions of a model, newest first."""
        with reading(self.engine) as conn:
            self._model(conn, name)
            query = select(t.model_versions).where(t.model_versions.c.name == name)
            if not include_deleted:
                query = query.where(t.model_versions.c.deleted.is_(False))
            rows = list(conn.execute(query.order_by(t.model_versions.c.version.desc())).all())
            return self._hydrate(conn, rows)

    def update_version(
        self,
        name: str,
        version: int,
        changes: dict[str, Any],
        expected_state: VersionState | None = None,
    ) -> ModelVersion:
        """Change description, card or state; ``expected_state`` makes it compare-and-set."""
        values: dict[str, Any] = {"updated_at": now_ms()}
        for key, value in changes.items():
            if key == "state":
                values["state"] = VersionState(value).value
            elif key in _JSON_FIELDS:
                values[key] = json.dumps(value)
            elif key == "description":
                values["description"] = value
            else:
                raise ValueError(f"cannot change {key!r} of a model version")
        with writing(self.engine) as conn:
            row = self._version_row(conn, name, version)
            if row.deleted:
                raise _deleted(name, version)
            query = update(t.model_versions).where(t.model_versions.c.id == row.id)
            if expected_state is not None:
                query = query.where(t.model_versions.c.state == expected_state.value)
            if conn.execute(query.values(values)).rowcount == 0:
                raise StateTransitionError(
                    f"version {version} of {name!r} changed state meanwhile (it is no longer "
                    f"{expected_state.value if expected_state else '?'}); reload and retry",
                    model=name,
                    version=version,
                )
            return self._hydrate(conn, [self._version_row(conn, name, version)])[0]

    def set_version_tag(self, name: str, version: int, key: str, value: str | None) -> None:
        """Set a version tag, or delete it when ``value`` is None."""
        with writing(self.engine) as conn:
            row = self._version_row(conn, name, version)
            if value is None:
                conn.execute(
                    delete(t.model_version_tags).where(
                        t.model_version_tags.c.version_id == row.id,
                        t.model_version_tags.c.key == key,
                    )
                )
                return
            stmt = upsert(conn, t.model_version_tags).values(
                version_id=row.id, key=key, value=value
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["version_id", "key"], set_={"value": value}
                )
            )

    def set_alias(self, name: str, alias: str, version: int | None) -> None:
        """Point ``alias`` at ``version`` (moving it), or delete it when ``version`` is None."""
        with writing(self.engine) as conn:
            self._model(conn, name, lock=True)
            aliases = t.model_aliases
            if version is None:
                gone = conn.execute(
                    delete(aliases).where(aliases.c.name == name, aliases.c.alias == alias)
                )
                if gone.rowcount == 0:
                    raise NotFoundError(
                        f"model {name!r} has no alias {alias!r}", model=name, alias=alias
                    )
                return
            row = self._version_row(conn, name, version)
            if row.deleted:
                raise _deleted(name, version)
            now = now_ms()
            stmt = upsert(conn, aliases).values(
                name=name, alias=alias, version=version, updated_at=now
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["name", "alias"], set_={"version": version, "updated_at": now}
                )
            )

    def delete_version(self, name: str, version: int) -> None:
        """Mark a version deleted and drop the aliases that pointed to it, atomically."""
        with writing(self.engine) as conn:
            row = self._version_row(conn, name, version)
            if row.deleted:
                raise _deleted(name, version)
            conn.execute(
                delete(t.model_aliases).where(
                    t.model_aliases.c.name == name, t.model_aliases.c.version == version
                )
            )
            conn.execute(
                update(t.model_versions)
                .where(t.model_versions.c.id == row.id)
                .values(deleted=True, updated_at=now_ms())
            )

    def versions_of_run(self, run_id: str) -> list[ModelVersion]:
        """Live versions whose package is an artifact of ``run_id``."""
        with reading(self.engine) as conn:
            query = select(t.model_versions).where(
                t.model_versions.c.run_id == run_id, t.model_versions.c.deleted.is_(False)
            )
            return self._hydrate(conn, list(conn.execute(query).all()))


def _deleted(name: str, version: int) -> NotFoundError:
    return NotFoundError(
        f"version {version} of model {name!r} was deleted", model=name, version=version
    )
