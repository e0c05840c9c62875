"""Schemathesis over the server's own OpenAPI document, once per role: no 5xx, every API
refusal a JSON body, and the audit chain still whole afterwards.

Bounded: a fixed number of generated requests per role (valid and invalid by the schema,
drawn across all operations, derandomised so a failure reproduces), to 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.bootstrap import local_backend
from shipyard.core.settings import Settings
from shipyard.server.app import create_app
from tests.integration.test_gates import FAIR, make_data
from tests.integration.test_server_auth import AuthServer

PER_OPERATION = 3  # valid and as many invalid requests for each of the ~110 operations
REQUESTS_PER_ROLE = 110 * 2 * PER_OPERATION  # at least; 134 operations now


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AuthServer, Any]]:
    home = tmp_path_factory.mktemp("fuzz")
    server = AuthServer(home)
    shipyard.set_uri(str(server.home))
    data = make_data(400, 1)
    model = LogisticRegression().fit(data[FAIR], data["label"])
    shipyard.register_model("credit", model, data[FAIR][:5], training_data=data[FAIR])
    shipyard.set_uri(None)
    backend = local_backend(Settings(uri=str(server.home)))
    spec = create_app(backend, Settings(uri=str(server.home))).openapi()
    backend.close()
    yield server, schemathesis.openapi.from_dict(spec)
    server.proc.stop()


def _problem(case: Any, response: requests.Response) -> str | None:
    """What is wrong with an answer, if anything."""
    where = f"{case.method} {case.formatted_path}"
    if response.status_code >= 500:
        return f"{where} -> {response.status_code}: {response.text[:300]}"
    if response.status_code >= 400 and case.path.startswith("/api/") and case.method != "HEAD":
        try:
            body = response.json()
        except json.JSONDecodeError:
            return f"{where} -> {response.status_code} without a JSON body: {response.text[:200]}"
        if not isinstance(body, dict) or not body:
            return f"{where} -> {response.status_code} with an empty error body"
    return None


def _generated(operation: Any, mode: GenerationMode) -> list[Any]:
    """The requests Hypothesis draws for one operation, derandomised (the same every run)."""
    drawn: list[Any] = []

    @settings(
        max_examples=PER_OPERATION,
        derandomize=True,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: problems are collected
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def draw(case: Any) -> None:
        drawn.append(case)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.suppress(Unsatisfiable):  # nothing invalid to send: no params
            draw()
    return drawn


@pytest.fixture(scope="module")
def cases(site: tuple[AuthServer, Any]) -> list[Any]:
    """Every operation's valid and invalid requests, drawn once and sent as each role:
    drawing is most of the cost, and the draws do not depend on who sends them."""
    operations = [r.ok() for r in site[1].get_all_operations()]
    assert len(operations) > 100
    return [
        case
        for operation in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        for case in _generated(operation, mode)
    ]


@pytest.mark.xdist_group("fuzz")  # one server for the five roles, on one worker
@pytest.mark.parametrize("role", ["anonymous", "viewer", "member", "approver", "admin"])
def test_generated_requests_never_get_a_5xx_and_refusals_are_json(
    site: tuple[AuthServer, Any], cases: list[Any], role: str
) -> None:
    server, _ = site
    headers = {} if role == "anonymous" else server.headers(role)
    session = requests.Session()
    problems: list[str] = []
    statuses: dict[int, int] = {}
    for case in cases:
        try:
            response = case.call(base_url=server.url, session=session, headers=headers, timeout=30)
        except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, ValueError):
            continue  # the client library refused to send it: nothing reached the server
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        problem = _problem(case, response)
        if problem is not None and len(problems) < 20:
            problems.append(problem)
    print(role, dict(sorted(statuses.items())))
    assert sum(statuses.values()) > REQUESTS_PER_ROLE // 2
    if role == "anonymous":
        assert statuses.get(401, 0) > REQUESTS_PER_ROLE // 2
    else:  # the requests reach the handlers: answers and input refusals, not only 401/403
        assert sum(n for code, n in statuses.items() if code < 300) >= 5
        assert statuses.get(422, 0) + statuses.get(400, 0) + statuses.get(404, 0) > 10
    assert not problems, "\n".join(problems)
    health = httpx.get(f"{server.url}/health", timeout=10)
    assert health.status_code == 200
    verify = httpx.get(
        f"{server.url}/api/v1/audit/verify", headers=server.headers("admin"), timeout=30
    )
    assert verify.json()["ok"] is True, verify.text
