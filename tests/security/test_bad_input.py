"""Hostile request bodies on a live server: a JSON 4xx for each, nothing stored changes."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.conftest import ServerProcess

BIG = 2**63
DEEP_ARRAY = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 50_000 + "1" + "}" * 50_000


def _cases(exp: str, run: str) -> list[tuple[str, str, str | None]]:
    def dump(doc: object) -> str:
        return json.dumps(doc)  # ensure_ascii: a lone surrogate travels as \\udXXX

    metric = {"key": "a", "value": 1, "step": 0, "timestamp": 1}
    return [
        ("POST", "/api/v1/lineage", DEEP_ARRAY),
        ("POST", "/api/v1/lineage", DEEP_OBJECT),
        ("POST", "/api/v1/deployments/x/feedback", DEEP_ARRAY),
        ("POST", "/api/v1/deployments/x/feedback", '{"labels":' + DEEP_ARRAY + "}"),
        ("POST", f"/api/v1/runs/{run}/batch", '{"metrics":' + DEEP_ARRAY + "}"),
        ("POST", f"/api/v1/runs/{run}/batch", dump({"metrics": [metric | {"step": BIG}]})),
        ("POST", f"/api/v1/runs/{run}/batch", dump({"metrics": [metric | {"timestamp": BIG}]})),
        ("POST", f"/api/v1/runs/{run}/batch", dump({"metrics": [metric | {"value": 10**400}]})),
        ("POST", f"/api/v1/runs/{run}/batch", dump({"params": {"p": "\ud800"}})),
        ("POST", f"/api/v1/runs/{run}/batch", dump({"tags": {"t\udc00": "x"}})),
        ("POST", "/api/v1/experiments", dump({"name": "\ud800x"})),
        (
            "POST",
            "/api/v1/runs",
            dump({"experiment_id": exp, "name": "n", "tags": {"a": "\ud800"}}),
        ),
        ("POST", "/api/v1/runs/search", dump({"experiment_ids": [exp], "max_results": BIG})),
        (
            "POST",
            "/api/v1/runs/search",
            dump({"experiment_ids": [exp], "filter": "params.a = '\ud800'"}),
        ),
        ("GET", f"/api/v1/models/x/versions/{BIG}", None),
        ("GET", f"/api/v1/models/x/gate-reports?version={BIG}", None),
        ("GET", f"/api/v1/models/x/promotion-requests?version={BIG}", None),
        ("GET", f"/api/v1/audit/events?since={BIG}", None),
        ("POST", "/api/v1/models/x/versions", dump({"run_id": run, "description": "\ud800"})),
        ("PUT", "/api/v1/models/x/aliases/champion", dump({"version": BIG})),
        (
            "POST",
            "/api/v1/models/x/versions/1/gate-reports",
            dump({"id": "gate_x", "model": "x", "version": BIG, "passed": True, "checks": []}),
        ),
        (
            "POST",
            "/api/v1/deployments/x/feedback",
            dump({"labels": [{"request_id": "\ud800", "label": BIG}]}),
        ),
        ("POST", "/api/v1/lineage", dump({"eventType": "START", "run": {"runId": "\ud800"}})),
        ("PATCH", f"/api/v1/runs/{run}", dump({"status": "\ud800"})),
        ("POST", f"/api/v1/runs/{run}/batch", "{"),
        ("POST", f"/api/v1/runs/{run}/batch", ""),
    ]


def test_hostile_bodies_get_a_json_4xx_and_change_nothing(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        exp = client.post("/api/v1/experiments", json={"name": f"e{uuid.uuid4().hex[:6]}"}).json()
        run = client.post("/api/v1/runs", json={"experiment_id": exp["id"], "name": "r"}).json()
        client.post(
            f"/api/v1/runs/{run['id']}/batch",
            json={
                "params": {"p": "kept"},
                "metrics": [{"key": "m", "value": 1.5, "step": 2, "timestamp": 3}],
            },
        ).raise_for_status()
        before = client.get(f"/api/v1/runs/{run['id']}").json()
        failures = []
        for method, path, body in _cases(exp["id"], run["id"]):
            answer = client.request(
                method, path, content=body, headers={"content-type": "application/json"}
            )
            is_json = answer.headers.get("content-type", "").startswith("application/json")
            if not (400 <= answer.status_code < 500 and is_json and "error" in answer.json()):
                failures.append((method, path[:50], answer.status_code, answer.text[:120]))
        assert failures == []
        assert client.get(f"/api/v1/runs/{run['id']}").json() == before
        assert client.get("/health").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        DEEP_ARRAY,
        DEEP_OBJECT,
        '{"dataframe_split": {"columns": ["a"], "data": [[' + str(BIG) + "]]}}",
    ],
)
def test_model_server_parses_hostile_json_as_bad_input(body: str) -> None:
    from shipyard.core.errors import InvalidInputError
    from shipyard.core.jsonsafe import parse_json

    with pytest.raises(InvalidInputError):
        parse_json(body)
