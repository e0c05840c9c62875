"""Feedback: ground-truth labels keyed by the request id returned at serving time.

A batch is checked as a whole for label types (all numbers or all text, matching what the
model predicts); each label must name a logged request (and row) and may be given once:
unknown ids and repeats are reported back, not stored. Nothing stored is ever replaced.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from shipyard.core.actor import current_actor
from shipyard.core.audit import NULL_AUDIT, AuditLog
from shipyard.core.clock import now_ms
from shipyard.core.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.core.names import check_name
from shipyard.monitoring.models import FeedbackResult, Label, Rejected
from shipyard.monitoring.ports import FeedbackStore, PredictionSource

MAX_BATCH = 100_000
MAX_TEXT_LABEL = 200


def _label_kind(value: object) -> str:
    if isinstance(value, bool):
        return "number"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInputError(
                "labels must be finite numbers or text; got a non-finite number"
            )
        return "number"
    if isinstance(value, str) and 0 < len(value) <= MAX_TEXT_LABEL:
        return "text"
    raise InvalidInputError(
        f"labels must be numbers, booleans or text of 1-{MAX_TEXT_LABEL} characters; "
        f"got {type(value).__name__}"
    )


def parse_items(items: Iterable[Mapping[str, Any]]) -> list[Label]:
    """Labels from ``{"request_id", "label", "row"?}`` mappings, checked one by one."""
    labels: list[Label] = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or "request_id" not in item or "label" not in item:
            raise InvalidInputError(f"labels[{i}] needs request_id and label")
        request_id, row = item["request_id"], item.get("row", 0)
        if not isinstance(request_id, str) or not 0 < len(request_id) <= 128:
            raise InvalidInputError(f"labels[{i}].request_id must be text of 1-128 characters")
        if not isinstance(row, int) or isinstance(row, bool) or row < 0:
            raise InvalidInputError(f"labels[{i}].row must be a non-negative integer")
        labels.append(Label(request_id, item["label"], row))
        if len(labels) > MAX_BATCH:
            raise InvalidInputError(f"at most {MAX_BATCH:,} labels per call")
    if not labels:
        raise InvalidInputError("no labels given")
    return labels


class FeedbackService:
    """Take labels for a deployment's logged predictions."""

    def __init__(
        self, store: FeedbackStore, predictions: PredictionSource, audit: AuditLog | None = None
    ) -> None:
        self.store = store
        self.predictions = predictions
        self.audit: AuditLog = audit or NULL_AUDIT

    def submit(self, deployment: str, items: Iterable[Mapping[str, Any]]) -> FeedbackResult:
        """Store what is new and valid; report the rest. All refused: a clear error."""
        name = check_name(deployment, "deployment name")
        labels = parse_items(items)
        kinds = {_label_kind(label.label) for label in labels}
        if len(kinds) > 1:
            raise InvalidInputError("labels of one call must all be numbers or all be text")
        logged = self.predictions.predictions(
            name, columns=["request_id", "row", "output.prediction"]
        )
        if logged is None or len(logged) == 0:
            raise NotFoundError(f"deployment {name!r} has no logged predictions", deployment=name)
        predicted_text = logged["output.prediction"].dtype == object or str(
            logged["output.prediction"].dtype
        ).startswith(("str", "string"))
        if (kinds == {"text"}) != predicted_text:
            want = "text" if predicted_text else "numbers"
            raise InvalidInputError(
                f"labels of deployment {name!r} must be {want}, like its predictions"
            )
        known = set(zip(logged["request_id"].astype(str), logged["row"].astype(int), strict=True))
        rejected: list[Rejected] = []
        fresh: list[Label] = []
        seen: set[tuple[str, int]] = set()
        stamp, actor = now_ms(), current_actor()
        for label in labels:
            key = (label.request_id, label.row)
            if key not in known:
                rejected.append(Rejected(label.request_id, label.row, "unknown request id"))
            elif key in seen:
                rejected.append(Rejected(label.request_id, label.row, "repeated in this call"))
            else:
                seen.add(key)
                fresh.append(Label(label.request_id, label.label, label.row, stamp, actor))
        with self.audit.atomic():
            stored_before = self.store.add_labels(name, fresh) if fresh else []
            for label in stored_before:
                rejected.append(Rejected(label.request_id, label.row, "already labelled"))
            accepted = len(fresh) - len(stored_before)
            if accepted:
                self.audit.record(
                    "feedback.received",
                    f"deployment:{name}",
                    {"accepted": accepted, "rejected": len(rejected)},
                )
        result = FeedbackResult(name, accepted, rejected)
        if not accepted:
            reasons = {r.reason for r in rejected}
            if reasons == {"unknown request id"}:
                raise NotFoundError(
                    f"none of the {len(labels)} request ids is in the prediction log of {name!r}",
                    deployment=name,
                )
            raise ConflictError(f"no new labels: {', '.join(sorted(reasons))}", deployment=name)
        return result
