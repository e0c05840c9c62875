"""Delayed labels joined by request id: served predictions, then feedback, on real parts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.core.errors import ConflictError, InvalidInputError, NotFoundError
from tests.conftest import ServerProcess
from tests.e2e.test_cli import cli
from tests.integration.test_model_server import COLS, ModelServer


@pytest.fixture
def served_ids(tmp_path: Path, seed: int) -> Iterator[tuple[Path, list[str]]]:
    """A store with fraud v1 served once: 30 requests logged (request ids returned)."""
    store = tmp_path / "store"
    shipyard.set_uri(str(store))
    X, y = make_classification(300, 5, random_state=seed)
    frame = pd.DataFrame(X, columns=COLS)
    shipyard.register_model("fraud", LogisticRegression().fit(frame, y), frame[:5])
    shipyard.set_uri(None)
    srv = ModelServer(store, "models:/fraud/1", "--name", "fraud-live")
    ids = []
    try:
        for i in range(30):
            reply = httpx.post(
                f"{srv.url}/invocations",
                json={"dataframe_split": {"columns": COLS, "data": [X[i].tolist()]}},
                headers={"x-request-id": f"req-{i}"},
            )
            assert reply.status_code == 200
            ids.append(reply.headers["x-request-id"])
    finally:
        srv.stop()  # closes the log's files so readers see them
    shipyard.set_uri(str(store))
    yield store, ids
    shipyard.set_uri(None)


def test_labels_are_stored_once_and_refusals_are_explained(
    served_ids: tuple[Path, list[str]],
) -> None:
    _, ids = served_ids
    first = shipyard.log_feedback("fraud-live", dict.fromkeys(ids[:10], 1))
    assert first.accepted == 10 and first.rejected == []
    mixed = shipyard.log_feedback(
        "fraud-live",
        [
            {"request_id": ids[10], "label": 0},
            {"request_id": ids[10], "label": 1},
            {"request_id": ids[0], "label": 0},
            {"request_id": "never-served", "label": 1},
        ],
    )
    assert mixed.accepted == 1
    assert {(r.request_id, r.reason) for r in mixed.rejected} == {
        (ids[10], "repeated in this call"),
        (ids[0], "already labelled"),
        ("never-served", "unknown request id"),
    }
    with pytest.raises(ConflictError, match="already labelled"):
        shipyard.log_feedback("fraud-live", {ids[1]: 0})
    with pytest.raises(NotFoundError, match="none of the 2 request ids"):
        shipyard.log_feedback("fraud-live", {"x": 1, "y": 0})
    with pytest.raises(NotFoundError, match="no logged predictions"):
        shipyard.log_feedback("nobody", {ids[2]: 1})
    # The stored label of a row is never replaced.
    stored = shipyard.sdk.context.current().get_backend().feedback.store.labels("fraud-live")
    assert {lb.request_id: lb.label for lb in stored}[ids[0]] == 1


@pytest.mark.parametrize(
    ("labels", "needle"),
    [
        ({"req-3": "fraud"}, "must be numbers, like its predictions"),
        (
            [{"request_id": "req-3", "label": 1}, {"request_id": "req-4", "label": "x"}],
            "all be numbers or all be text",
        ),
        ({"req-3": float("nan")}, "finite"),
        ({"req-3": [1]}, "numbers, booleans or text"),
        ([{"request_id": "req-3"}], "needs request_id and label"),
        ([{"request_id": "req-3", "label": 1, "row": -1}], "non-negative"),
        ([], "no labels"),
    ],
)
def test_labels_of_the_wrong_type_are_refused(
    served_ids: tuple[Path, list[str]], labels: object, needle: str
) -> None:
    with pytest.raises(InvalidInputError, match=needle):
        shipyard.log_feedback("fraud-live", labels)
    assert shipyard.sdk.context.current().get_backend().feedback.store.labels("fraud-live") == []


def test_feedback_over_http_and_the_cli(served_ids: tuple[Path, list[str]], tmp_path: Path) -> None:
    store, ids = served_ids
    server = ServerProcess(store, {"SHIPYARD_PREDLOG": str(store / "predictions")})
    try:
        url = f"{server.url}/api/v1/deployments/fraud-live/feedback"
        done = httpx.post(url, json={"labels": [{"request_id": ids[0], "label": 1}]})
        assert done.status_code == 200 and done.json()["accepted"] == 1
        again = httpx.post(url, json={"labels": [{"request_id": ids[0], "label": 1}]})
        assert again.status_code == 409 and "already labelled" in again.json()["error"]
        unknown = httpx.post(url, json={"labels": [{"request_id": "nope", "label": 1}]})
        assert unknown.status_code == 404
        for bad in (b"{oops", b'{"labels": 3}', b'{"labels": [{"request_id": 5, "label": 1}]}'):
            answer = httpx.post(url, content=bad, headers={"Content-Type": "application/json"})
            assert answer.status_code == 400, answer.text
        shipyard.set_uri(server.url)
        assert shipyard.log_feedback("fraud-live", {ids[1]: 0}).accepted == 1
    finally:
        shipyard.set_uri(str(store))
        server.stop()
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"request_id": ids[2:6], "label": [1, 0, 1, 0]}).to_csv(labels, index=False)
    out = cli(
        "feedback",
        "send",
        "fraud-live",
        str(labels),
        "--json",
        env={"SHIPYARD_URI": str(store), "SHIPYARD_PREDLOG": str(store / "predictions")},
    )
    assert out.returncode == 0, out.stderr
    assert '"accepted": 4' in out.stdout
    events = [
        e.action for e in shipyard.sdk.context.current().get_backend().governance.audit.events()
    ]
    assert events.count("feedback.received") == 3
