from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.core.settings import Settings


def test_defaults_live_under_dot_shipyard(tmp_path: Path) -> None:
    settings = Settings()
    assert settings.store_uri == f"sqlite:///{tmp_path / '.shipyard' / 'shipyard.db'}"
    assert settings.artifact_root == str(tmp_path / ".shipyard" / "artifacts")
    assert settings.backend_kind == "sqlite"


def test_env_beats_pyproject_and_arguments_beat_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.shipyard]\nuri = "from-pyproject"\nflush_interval = 2.5\n'
    )
    assert Settings().store_uri.endswith("from-pyproject/shipyard.db")
    assert Settings().flush_interval == 2.5
    monkeypatch.setenv("SHIPYARD_URI", "http://127.0.0.1:5000")
    assert Settings().backend_kind == "http"
    assert Settings(uri="postgresql+psycopg://u@h/db").backend_kind == "postgresql"


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises((InvalidInputError, ValueError), match="scheme"):
        Settings(uri="mysql://root@localhost/db")


def test_artifacts_default_beside_the_sqlite_file(tmp_path: Path) -> None:
    settings = Settings(uri=f"sqlite:///{tmp_path}/x/meta.db")
    assert settings.artifact_root == str(tmp_path / "x" / "artifacts")
