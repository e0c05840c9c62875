"""Feedback through a Shipyard server."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from shipyard.monitoring.feedback import FeedbackService, parse_items
from shipyard.monitoring.models import FeedbackResult, Rejected
from shipyard.remote.client import RestClient, seg


class RestFeedback(FeedbackService):
    """POST /api/v1/deployments/{name}/feedback; the server checks and stores."""

    def __init__(self, client: RestClient) -> None:
        self.client = client

    def submit(self, deployment: str, items: Iterable[Mapping[str, Any]]) -> FeedbackResult:
        """Send the labels; the answer says what was stored and what was refused."""
        labels = [
            {"request_id": lb.request_id, "row": lb.row, "label": lb.label}
            for lb in parse_items(items)
        ]
        data = self.client.json(
            "POST",
            f"/api/v1/deployments/{seg(deployment)}/feedback",
            idempotent=False,
            content=json.dumps({"labels": labels}),
            headers={"Content-Type": "application/json"},
        )
        return FeedbackResult(
            data["deployment"], int(data["accepted"]), [Rejected(**r) for r in data["rejected"]]
        )
