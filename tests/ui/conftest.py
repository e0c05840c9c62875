"""The web UI against a real server (--auth tokens) over the store the demo leaves, driven
by Debian's Chromium through Playwright. Screenshots of every page land in
``build/ui-screenshots`` (or ``$SHIPYARD_TEST_ARTIFACTS/ui-screenshots``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shipyard.bootstrap import local_backend
from shipyard.core.actor import acting_as
from shipyard.core.settings import Settings
from tests.conftest import ServerProcess

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ROOT = Path(__file__).resolve().parents[2]
AXE = Path(os.environ.get("SHIPYARD_AXE", ROOT / ".venv/axe/node_modules/axe-core/axe.min.js"))
SHOTS = Path(os.environ.get("SHIPYARD_TEST_ARTIFACTS", ROOT / "build")) / "ui-screenshots"


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is not installed (make browser)"
    if not AXE.exists():
        return f"axe-core is not installed at {AXE} (make test installs it)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    return None


@pytest.fixture(scope="session")
def browser_ready() -> None:
    """Skip locally without a browser; fail in CI, where `make test` installs one."""
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the UI suite cannot run in CI: {reason}")
        pytest.skip(reason)


def _ship_to_terminals(backend: Any, store: Path) -> str:
    """On 20,000 rows the demo's champion is the logistic pipeline, which stays off terminals:
    export the boosting candidate instead, roll it out to half of eight Porto terminals."""
    from shipyard.core.errors import InvalidInputError
    from shipyard.demo.data import LABEL, make_transactions
    from shipyard.edge.keys import KeyRing
    from shipyard.edge.targets import EdgeTarget

    ring = KeyRing(Settings(uri=str(store)).edge_keys_path)
    if "release" not in {k.name for k in ring.list()}:
        ring.create("release")
    target = EdgeTarget(name="terminal", max_score_diff=0.05)
    holdout = make_transactions(3000, seed=5)
    record = None
    with acting_as("ana"):
        for version in backend.registry.list_versions("fraud"):
            try:
                _, record = backend.edge.export(
                    version.uri, target, holdout, LABEL, ring.private("release")
                )
            except InvalidInputError:
                continue
            if record is not None:
                break
    assert record is not None, "no demo version converts for the terminals"
    with acting_as("rui"):
        backend.edge.start_rollout("porto-terminals", record.id, 50)
    # Which half a device falls in depends on the rollout's id: take the first four terminals
    # on each side, so the page always has both (eight at random were all on one side in
    # about one run in 128).
    sides: dict[bool, list[tuple[str, Any]]] = {True: [], False: []}
    for i in range(500):
        device = f"porto-{i}"
        assigned = backend.edge.assignment(device, "porto-terminals")["bundle"]
        side = sides[assigned == record.id]
        if len(side) < 4:
            side.append((device, assigned))
        if all(len(v) == 4 for v in sides.values()):
            break
    for device, assigned in sides[True] + sides[False]:
        backend.edge.checkin(device, "porto-terminals", assigned)
    return str(record.id)


@dataclass
class Site:
    """A server over the demo's store, with tokens for the demo's people and a viewer."""

    url: str
    home: Path
    tokens: dict[str, str]
    pipeline_run: str
    candidate: int
    search_run: str
    bundle: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, browser_ready: None) -> Iterator[Site]:
    """Run the demo (small), add tokens, and serve the store with token auth."""
    home = tmp_path_factory.mktemp("ui-site")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    demo = subprocess.run(
        [sys.executable, "-m", "shipyard", "demo", "--rows", "20000", "--automl-budget", "5"],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    store = home / ".shipyard"
    backend = local_backend(Settings(uri=str(store)))
    try:
        identity = backend.governance.identity
        tokens = {}
        with acting_as("admin"):
            identity.create_user("vic", "viewer")
            for person in ("ana", "rui", "vic"):
                tokens[person] = identity.create_token(person, "ui-test")[1]
        runs = backend.pipelines.store.list_pipeline_runs("fraud_training", 10)  # type: ignore[union-attr]
        # The retrained candidate (the demo's AutoML winner comes after it, and may fail gates).
        candidate = max(
            v.version
            for v in backend.registry.list_versions("fraud")
            if "shipyard.automl.study" not in v.tags
        )
        search_run = next(
            r.id
            for r in backend.tracking.search_runs(["fraud-training"], max_results=500)
            if r.parent_id is None and "shipyard.automl.study" in r.tags
        )
        bundle = _ship_to_terminals(backend, store)
    finally:
        backend.close()
    server = ServerProcess(store, {"SHIPYARD_AUTH": "tokens"})
    try:
        yield Site(server.url, store, tokens, runs[-1].id, candidate, search_run, bundle)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def chromium(browser_ready: None) -> Iterator[object]:
    """One headless Chromium for the module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def shots() -> Path:
    """Where screenshots go (a test overwrites its own)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
