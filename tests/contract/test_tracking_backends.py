"""One suite, every backend: embedded SQLite, PostgreSQL, and the REST client to a server."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from shipyard.bootstrap import Backend
from shipyard.core.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.core.ids import new_id
from shipyard.tracking.models import Metric, RunStatus

UNKNOWN_RUN = new_id("run")


def test_experiment_create_get_and_duplicate_conflict(backend: Backend) -> None:
    svc = backend.tracking
    exp = svc.create_experiment("détection-fraude 🚨", {"team": "risk"})
    assert svc.get_experiment(exp.id) == exp
    assert svc.get_experiment("détection-fraude 🚨").id == exp.id
    with pytest.raises(ConflictError):
        svc.create_experiment("détection-fraude 🚨")
    assert [e.name for e in svc.list_experiments()] == ["détection-fraude 🚨"]


def test_unknown_ids_raise_not_found(backend: Backend) -> None:
    svc = backend.tracking
    with pytest.raises(NotFoundError):
        svc.get_run(UNKNOWN_RUN)
    with pytest.raises(NotFoundError):
        svc.get_experiment(new_id("exp"))
    with pytest.raises(NotFoundError):
        svc.get_experiment("no such experiment")
    with pytest.raises(NotFoundError):
        svc.log_batch(UNKNOWN_RUN, params={"a": 1})
    with pytest.raises(InvalidInputError):
        svc.get_run("run_not-an-id")


def test_run_lifecycle_params_tags_and_latest_metrics(backend: Backend) -> None:
    svc = backend.tracking
    run = svc.create_run("fraud", name="baseline", tags={"owner": "ana"})
    assert run.status is RunStatus.RUNNING
    svc.log_batch(
        run.id,
        metrics=[
            Metric("auc", 0.8, 0, 1000),
            Metric("auc", 0.9, 1, 1001),
            Metric("auc", 0.85, 1, 999),
        ],
        params={"model": "lgbm", "depth": 6},
        tags={"owner": "bea"},
    )
    ended = svc.end_run(run.id, "FINISHED")
    assert ended.status is RunStatus.FINISHED and ended.end_time is not None
    got = svc.get_run(run.id)
    # latest = highest step, then latest timestamp
    assert got.metrics == {"auc": 0.9}
    assert got.params == {"model": "lgbm", "depth": "6"}
    # Every run records who started it (separation of duties reads it later).
    assert got.tags == {"owner": "bea", "shipyard.user": got.tags["shipyard.user"]}
    assert got.tags["shipyard.user"]
    history = svc.get_metric_history(run.id, "auc")
    assert [(m.step, m.value) for m in history] == [(0, 0.8), (1, 0.85), (1, 0.9)]


def test_params_are_immutable_and_nothing_is_lost(backend: Backend) -> None:
    svc = backend.tracking
    run = svc.create_run("fraud")
    svc.log_batch(run.id, params={"lr": "0.1"})
    svc.log_batch(run.id, params={"lr": "0.1"})  # same value: fine
    with pytest.raises(ConflictError):
        svc.log_batch(run.id, metrics=[Metric("loss", 1.0, 0, 1)], params={"lr": "0.2"})
    got = svc.get_run(run.id)
    assert got.params == {"lr": "0.1"}
    assert got.metrics == {}  # the whole batch was refused, not half of it


def test_non_finite_metric_values_round_trip(backend: Backend) -> None:
    svc = backend.tracking
    run = svc.create_run("fraud")
    svc.log_batch(
        run.id,
        metrics=[
            Metric("nan", math.nan, 0, 1),
            Metric("pinf", math.inf, 0, 1),
            Metric("ninf", -math.inf, 0, 1),
            Metric("tiny", 5e-324, 0, 1),
        ],
    )
    got = svc.get_run(run.id).metrics
    assert math.isnan(got["nan"])
    assert got["pinf"] == math.inf and got["ninf"] == -math.inf
    assert got["tiny"] == 5e-324
    assert math.isnan(svc.get_metric_history(run.id, "nan")[0].value)


def test_batch_retry_with_same_id_is_applied_once(backend: Backend) -> None:
    svc = backend.tracking
    run = svc.create_run("fraud")
    batch_id = new_id("batch")
    points = [Metric("loss", float(i), i, 1) for i in range(100)]
    svc.log_batch(run.id, metrics=points, batch_id=batch_id)
    svc.log_batch(run.id, metrics=points, batch_id=batch_id)
    assert len(svc.get_metric_history(run.id, "loss")) == 100


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("x" * 251, 1.0),
        ("../etc", 1.0),
        ("/abs", 1.0),
        ("bad\x00key", 1.0),
        ("ok", "0.5"),
    ],
)
def test_invalid_metrics_are_refused_with_a_clear_error(
    backend: Backend, key: str, value: object
) -> None:
    svc = backend.tracking
    run = svc.create_run("fraud")
    with pytest.raises(InvalidInputError):
        svc.log_batch(run.id, metrics=[Metric(key, value, 0, 1)])  # type: ignore[arg-type]
    assert svc.get_run(run.id).metrics == {}


def test_history_is_by_step_then_time_then_logging_order_across_batches(
    backend: Backend,
) -> None:
    svc = backend.tracking
    run = svc.create_run("fraud")
    svc.log_batch(run.id, metrics=[Metric("loss", 0.3, 3, 5), Metric("loss", 0.1, 1, 9)])
    svc.log_batch(
        run.id,
        metrics=[Metric("loss", 0.2, 1, 9), Metric("auc", 0.7, 0, 1), Metric("loss", 0.0, 1, 2)],
    )
    svc.log_batch(run.id, metrics=[Metric("loss", 0.4, 3, 5)])
    history = svc.get_metric_history(run.id, "loss")
    assert [(m.step, m.timestamp, m.value) for m in history] == [
        (1, 2, 0.0),
        (1, 9, 0.1),
        (1, 9, 0.2),
        (3, 5, 0.3),
        (3, 5, 0.4),
    ]
    assert svc.get_run(run.id).metrics == {"loss": 0.4, "auc": 0.7}  # latest: last logged


@pytest.mark.parametrize("timestamp", [2**63, -(2**63) - 1, 1.5, True])
def test_timestamps_beyond_64_bits_or_not_integers_are_refused(
    backend: Backend, timestamp: object
) -> None:
    svc = backend.tracking
    run = svc.create_run("fraud")
    with pytest.raises(InvalidInputError, match="timestamp"):
        svc.log_batch(run.id, metrics=[Metric("ok", 1.0, 0, 1), Metric("t", 1.0, 0, timestamp)])  # type: ignore[arg-type]
    assert svc.get_run(run.id).metrics == {}


def test_unicode_keys_and_names_are_kept(backend: Backend) -> None:
    svc = backend.tracking
    run = svc.create_run("実験", name="exécution ü")
    svc.log_batch(run.id, metrics=[Metric("précision/été", 0.5, 0, 1)], params={"modèle": "forêt"})
    got = svc.get_run(run.id)
    assert got.name == "exécution ü"
    assert got.metrics == {"précision/été": 0.5}
    assert got.params == {"modèle": "forêt"}


def test_search_filters_orders_and_pages(backend: Backend) -> None:
    svc = backend.tracking
    ids = []
    for i in range(7):
        run = svc.create_run("search", name=f"r{i}")
        svc.log_batch(
            run.id,
            metrics=[Metric("auc", 0.8 + i / 100, 0, 1)],
            params={"model": "lgbm" if i % 2 else "xgb"},
            tags={"team": "risk"},
        )
        ids.append(run.id)
    svc.end_run(ids[0], "FAILED")
    other = svc.create_run("elsewhere")
    svc.log_batch(other.id, metrics=[Metric("auc", 0.99, 0, 1)], params={"model": "lgbm"})

    page = svc.search_runs(
        "search", "metrics.auc > 0.82 and params.model = 'lgbm'", ["metrics.auc DESC"]
    )
    assert [r.name for r in page.runs] == ["r5", "r3"]
    assert page.next_page_token is None

    failed = svc.search_runs("search", "attributes.status = 'FAILED'")
    assert [r.id for r in failed.runs] == [ids[0]]
    liked = svc.search_runs("search", "params.model LIKE 'lg%' and tags.team IN ('risk', 'ops')")
    assert {r.name for r in liked.runs} == {"r1", "r3", "r5"}

    seen: list[str] = []
    token = None
    while True:
        page = svc.search_runs("search", None, ["metrics.auc ASC"], max_results=3, page_token=token)
        seen.extend(r.name for r in page.runs)
        token = page.next_page_token
        if token is None:
            break
    assert seen == [f"r{i}" for i in range(7)]
    both = svc.search_runs(["search", "elsewhere"], "metrics.auc >= 0.99")
    assert [r.id for r in both.runs] == [other.id]


@pytest.mark.parametrize(
    "order",
    [
        ["metrics.auc DESC"],  # one metric: read from its index while the page is full
        ["metrics.auc ASC"],
        ["metrics.auc ASC", "params.model DESC"],
        ["params.model", "attributes.end_time DESC"],
        [],
    ],
)
def test_keyset_pages_walk_every_run_once_in_order_with_ties_nan_and_missing(
    backend: Backend, order: list[str]
) -> None:
    svc = backend.tracking
    for i in range(23):
        run = svc.create_run("pages", name=f"r{i:02d}")
        value = [0.5, 0.7, math.nan, None][i % 4]  # ties, NaN and no metric at all
        metrics = [Metric("auc", value, 0, 1)] if value is not None else []
        params = {"model": "ab"[i % 2]} if i % 5 else {}
        svc.log_batch(run.id, metrics=metrics, params=params)
        if i % 3:
            svc.end_run(run.id)
    whole = [r.id for r in svc.search_runs("pages", None, order, max_results=1000).runs]
    assert len(whole) == 23
    seen: list[str] = []
    token = None
    for _ in range(30):
        page = svc.search_runs("pages", None, order, max_results=4, page_token=token)
        seen.extend(r.id for r in page.runs)
        token = page.next_page_token
        if token is None:
            break
    assert seen == whole
    # A token belongs to its order: reusing it with another is refused, not misread.
    first = svc.search_runs("pages", None, order, max_results=4)
    with pytest.raises(InvalidInputError, match="page_token"):
        svc.search_runs(
            "pages", None, [*order, "attributes.run_name"], page_token=first.next_page_token
        )


def test_search_with_sql_looking_text_is_refused_and_harmless(backend: Backend) -> None:
    svc = backend.tracking
    run = svc.create_run("fraud")
    with pytest.raises(InvalidInputError):
        svc.search_runs("fraud", "metrics.auc > 0.9; DROP TABLE runs")
    found = svc.search_runs("fraud", "params.model = 'x'' OR 1=1 --'")
    assert found.runs == []
    assert svc.get_run(run.id).id == run.id


def test_deleted_runs_disappear_from_lookups(backend: Backend) -> None:
    svc = backend.tracking
    run = svc.create_run("fraud")
    keep = svc.create_run("fraud")
    svc.delete_run(run.id)
    with pytest.raises(NotFoundError):
        svc.get_run(run.id)
    assert [r.id for r in svc.search_runs("fraud").runs] == [keep.id]


def test_nested_runs_record_their_parent(backend: Backend) -> None:
    svc = backend.tracking
    parent = svc.create_run("fraud")
    child = svc.create_run("fraud", parent_id=parent.id)
    assert svc.get_run(child.id).parent_id == parent.id
    assert [
        r.id for r in svc.search_runs("fraud", f"attributes.parent_id = '{parent.id}'").runs
    ] == [child.id]
    with pytest.raises(NotFoundError):
        svc.create_run("fraud", parent_id=UNKNOWN_RUN)


def test_artifacts_round_trip_deduplicate_and_refuse_escapes(
    backend: Backend, tmp_path: Path
) -> None:
    svc = backend.tracking
    run = svc.create_run("fraud")
    src = tmp_path / "report.json"
    src.write_bytes(b'{"auc": 0.9}' * 1000)
    first = svc.log_artifact(run.id, src, "eval/report.json")
    second = svc.log_artifact(run.id, src, "eval/copy.json")
    assert first.digest == second.digest and first.size == 12_000
    assert first.media_type == "application/json"
    assert [a.name for a in svc.list_artifacts(run.id)] == ["eval/copy.json", "eval/report.json"]
    out = svc.download_artifact(run.id, "eval/report.json", tmp_path / "out")
    assert out.read_bytes() == src.read_bytes()
    for bad in ("../escape.txt", "/etc/passwd", "a/../../b", "nul\x00byte", "a\\b"):
        with pytest.raises(InvalidInputError):
            svc.log_artifact(run.id, src, bad)
    with pytest.raises(NotFoundError):
        svc.download_artifact(run.id, "missing.bin", tmp_path)
    assert len(svc.list_artifacts(run.id)) == 2


# Strings that databases, drivers and JSON round trips are known to bend: decomposed and
# composed accents (kept distinct, never normalised), 4-byte characters, right-to-left
# text, joiners, and the longest values allowed.
UNICODE = {
    "nfc": "café",
    "nfd": "cafe\u0301",
    "emoji": "🚀👩🏽‍💻",
    "rtl": "مرحبا بالعالم",
    "cjk": "不正検知",
    "zwj": "a\u200db",
    "long_param": "é" * 6000,
}
EDGES = [
    0.0,
    -0.0,
    5e-324,  # the smallest subnormal
    2.2250738585072014e-308,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    1 / 3,
    0.1 + 0.2,
    math.inf,
    -math.inf,
    math.nan,
]


def test_numbers_at_their_edges_and_unicode_read_back_exactly(backend: Backend) -> None:
    svc = backend.tracking
    exp = svc.create_experiment("エッジ " + UNICODE["emoji"])
    run = svc.create_run(exp.id, name=UNICODE["rtl"], tags={"t": UNICODE["nfd"]})
    last_step, last_time = 2**63 - 1, 2**63 - 1
    points = [Metric("edge", v, i, i) for i, v in enumerate(EDGES)]
    points.append(Metric("far", 1.0, last_step, last_time))
    svc.log_batch(
        run.id,
        points,
        params=dict(UNICODE),
        tags={"nfc": UNICODE["nfc"]},
    )
    got = svc.get_run(run.id)
    assert got.name == UNICODE["rtl"]
    assert got.params == UNICODE
    assert got.tags["t"] == UNICODE["nfd"] and got.tags["nfc"] == UNICODE["nfc"]
    assert got.params["nfc"] != got.params["nfd"]  # never normalised into each other
    history = svc.get_metric_history(run.id, "edge")
    assert len(history) == len(EDGES)
    for sent, point in zip(EDGES, sorted(history, key=lambda m: m.step), strict=True):
        if math.isnan(sent):
            assert math.isnan(point.value)
        else:
            assert point.value == sent
            assert math.copysign(1, point.value) == math.copysign(1, sent)  # -0.0 stays
    (far,) = svc.get_metric_history(run.id, "far")
    assert (far.step, far.timestamp) == (last_step, last_time)
    assert svc.get_experiment("エッジ " + UNICODE["emoji"]).id == exp.id
    # Searching by a decomposed value finds that run, and the composed one does not match it.
    assert [r.id for r in svc.search_runs([exp.id], f"params.nfd = '{UNICODE['nfd']}'")] == [run.id]
    assert list(svc.search_runs([exp.id], f"params.nfd = '{UNICODE['nfc']}'")) == []
