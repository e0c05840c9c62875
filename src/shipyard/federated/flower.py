"""The Flower apps: a ClientApp each silo runs and a ServerApp at the coordinator.

Both are plain Flower objects (``shipyard.federated.flower:client_app`` and ``:server_app``),
so a Flower deployment (SuperLink, SuperNodes, ``flwr run``) runs them as it runs any app,
and :mod:`shipyard.federated.simulation` runs the same objects in one process. Strategies,
DP wrappers, SecAgg+ and the privacy accountant are Flower's; Shipyard adds the silo's data
and fingerprint, the pooled scaler, round-by-round tracking and the report the registry
copies into the model card.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

# shipyard.federated (imported first) turns Flower's telemetry and update checks off.
from flwr.app import Context, Message
from flwr.client import NumPyClient
from flwr.client.mod import fixedclipping_mod, secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.common import (
    GetPropertiesIns,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.compat.common.recorddict_compat import (
    getpropertiesins_to_recorddict,
    recorddict_to_getpropertiesres,
)
from flwr.server import LegacyContext, ServerConfig
from flwr.server import strategy as legacy
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.serverapp import Grid, ServerApp

from shipyard.core.errors import InvalidInputError
from shipyard.federated import trainer
from shipyard.federated.config import FederatedConfig, parse_config
from shipyard.federated.privacy import Accounting, statement

GET_PROPERTIES = "get_properties"  # Flower's legacy message type for NumPyClient.get_properties

#: Silos held in this process (simulation); a SuperNode reads its silo from node config.
IN_PROCESS: dict[str, trainer.SiloData] = {}
_LOADED: dict[tuple[str, str, str], trainer.SiloData] = {}
_LOCK = threading.Lock()


def job_of(context: Context) -> FederatedConfig:
    """The job a message belongs to (run config ``job``: its JSON)."""
    return parse_config(str(context.run_config["job"]))


def silo_of(context: Context, job: FederatedConfig) -> trainer.SiloData:
    """This node's data: in memory in a simulation, else the node config's ``data`` file."""
    name = str(context.node_config["silo"])
    if name in IN_PROCESS:
        return IN_PROCESS[name]
    path = str(context.node_config.get("data", ""))
    key = (name, path, job.to_json())
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = trainer.load_silo(name, path, job.label, job.holdout, job.seed)
        return _LOADED[key]


class SiloClient(NumPyClient):  # type: ignore[misc]
    """A silo's side of each message: profile, train from the global model, evaluate it."""

    def __init__(self, data: trainer.SiloData, job: FederatedConfig) -> None:
        self.data = data
        self.job = job

    def get_properties(self, config: dict[str, Any]) -> dict[str, Any]:
        return {
            "silo": self.data.name,
            "columns": json.dumps(self.data.columns),
            "fingerprint": json.dumps(self.data.fingerprint),
            "moments": json.dumps(trainer.moments(self.data)),
        }

    def get_parameters(self, config: dict[str, Any]) -> list[np.ndarray]:
        return trainer.initial_weights(len(self.data.columns))

    def _scaled(self, config: dict[str, Any], X: np.ndarray) -> np.ndarray:
        means, scales = json.loads(str(config["scaler"]))
        return np.asarray((X - np.asarray(means)) / np.asarray(scales))

    def fit(
        self, parameters: list[np.ndarray], config: dict[str, Any]
    ) -> tuple[list[np.ndarray], int, dict[str, Any]]:
        job = self.job
        round_ = int(config.get("round", 0))
        weights, loss = trainer.local_fit(
            parameters,
            self._scaled(config, self.data.X_train),
            self.data.y_train,
            epochs=job.local_epochs,
            batch_size=job.batch_size,
            learning_rate=job.learning_rate,
            l2=job.l2,
            proximal_mu=float(config.get("proximal_mu", 0.0)),
            seed=job.seed * 1_000_003 + round_,
        )
        # Under DP every silo weighs the same: weighting by rows would let one silo move the
        # mean by more than the clipping norm the noise is calibrated for.
        weight = 1 if job.dp is not None else len(self.data.y_train)
        return weights, weight, {"silo": self.data.name, "train_loss": loss}

    def evaluate(
        self, parameters: list[np.ndarray], config: dict[str, Any]
    ) -> tuple[float, int, dict[str, Any]]:
        metrics = trainer.evaluate(
            parameters,
            self._scaled(config, self.data.X_test),
            self.data.y_test,
            self.job.threshold,
        )
        return metrics["log_loss"], len(self.data.y_test), {"silo": self.data.name, **metrics}


def _client_fn(context: Context) -> Any:
    job = job_of(context)
    return SiloClient(silo_of(context, job), job).to_client()


def _job_mods(message: Message, context: Context, call_next: Callable[..., Message]) -> Message:
    """Flower's client mods the job asks for: SecAgg+ outside, DP clipping inside (the
    update is clipped before it is masked)."""
    job = job_of(context)
    chain = call_next
    if job.dp is not None and job.dp.mode == "central-client-fixed":
        inner = chain

        def clipped(m: Message, c: Context) -> Message:
            return fixedclipping_mod(m, c, inner)

        chain = clipped
    if job.secure_aggregation is not None:
        return secaggplus_mod(message, context, chain)
    return chain(message, context)


client_app = ClientApp(client_fn=_client_fn, mods=[_job_mods])


# --- the coordinator -------------------------------------------------------------------


def _weighted(results: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """Row-weighted means of the numeric metrics the silos sent."""
    total = sum(n for n, _ in results) or 1
    keys = {k for _, m in results for k, v in m.items() if isinstance(v, (int, float))}
    out: dict[str, Any] = {}
    for key in sorted(keys):
        pairs = [(n, float(m[key])) for n, m in results if isinstance(m.get(key), (int, float))]
        finite = [(n, v) for n, v in pairs if np.isfinite(v)]
        if finite:
            out[key] = sum(n * v for n, v in finite) / (sum(n for n, _ in finite) or total)
    return out


class RoundLog:
    """What each round did, as the strategy saw it: who answered, with which metrics."""

    def __init__(self, on_round: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.rounds: list[dict[str, Any]] = []
        self.weights: list[np.ndarray] | None = None
        self.on_round = on_round
        self._started: dict[int, float] = {}

    def started(self, round_: int) -> None:
        self._started[round_] = time.perf_counter()

    def fitted(self, round_: int, results: list[Any], failures: int) -> None:
        self.rounds.append(
            {
                "round": round_,
                "trained": {
                    str(r.metrics.get("silo")): {"train_loss": r.metrics.get("train_loss")}
                    for r in results
                },
                "fit_failures": failures,
            }
        )

    def evaluated(self, round_: int, results: list[Any], failures: int) -> None:
        entry = next((r for r in self.rounds if r["round"] == round_), None)
        if entry is None:
            entry = {"round": round_, "trained": {}, "fit_failures": 0}
            self.rounds.append(entry)
        entry["silos"] = {
            str(r.metrics.get("silo")): {k: v for k, v in r.metrics.items() if k != "silo"}
            for r in results
        }
        entry["evaluate_failures"] = failures
        entry["seconds"] = round(
            time.perf_counter() - self._started.get(round_, time.perf_counter()), 4
        )
        entry["global"] = _weighted([(int(r.num_examples), dict(r.metrics)) for r in results])
        if self.on_round is not None:
            self.on_round(entry)


class Recording(legacy.Strategy):  # type: ignore[misc]
    """A Flower strategy that records each round and keeps the latest global weights,
    delegating every decision to the wrapped strategy."""

    def __init__(self, inner: legacy.Strategy, log: RoundLog) -> None:
        super().__init__()
        self.inner = inner
        self.log = log

    def __repr__(self) -> str:
        return f"Recording({self.inner!r})"

    def initialize_parameters(self, client_manager: Any) -> Any:
        return self.inner.initialize_parameters(client_manager)

    def configure_fit(self, server_round: int, parameters: Any, client_manager: Any) -> Any:
        self.log.started(server_round)
        return self.inner.configure_fit(server_round, parameters, client_manager)

    def aggregate_fit(self, server_round: int, results: Any, failures: Any) -> Any:
        params, metrics = self.inner.aggregate_fit(server_round, results, failures)
        self.log.fitted(server_round, [r for _, r in results], len(failures))
        if params is not None:
            self.log.weights = parameters_to_ndarrays(params)
        return params, metrics

    def configure_evaluate(self, server_round: int, parameters: Any, client_manager: Any) -> Any:
        return self.inner.configure_evaluate(server_round, parameters, client_manager)

    def aggregate_evaluate(self, server_round: int, results: Any, failures: Any) -> Any:
        out = self.inner.aggregate_evaluate(server_round, results, failures)
        self.log.evaluated(server_round, [r for _, r in results], len(failures))
        return out

    def evaluate(self, server_round: int, parameters: Any) -> Any:
        return self.inner.evaluate(server_round, parameters)


def ask_silos(grid: Grid, job: FederatedConfig, expected: int) -> dict[str, dict[str, Any]]:
    """Each silo's columns, fingerprint and moments (Flower's get_properties message)."""
    deadline = time.monotonic() + job.join_timeout
    nodes = list(grid.get_node_ids())
    while len(nodes) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
        nodes = list(grid.get_node_ids())
    if len(nodes) < job.min_silos:
        raise InvalidInputError(
            f"{len(nodes)} silo(s) connected within {job.join_timeout:g} s; "
            f"the job needs at least {job.min_silos}"
        )
    messages = [
        Message(
            getpropertiesins_to_recorddict(GetPropertiesIns(config={})),
            node,
            GET_PROPERTIES,
            group_id="profile",
        )
        for node in nodes
    ]
    replies = grid.send_and_receive(messages, timeout=max(1.0, deadline - time.monotonic()))
    silos: dict[str, dict[str, Any]] = {}
    for reply in replies:
        if reply.has_error():
            continue
        props = recorddict_to_getpropertiesres(reply.content).properties
        silos[str(props["silo"])] = {
            "columns": json.loads(str(props["columns"])),
            "fingerprint": json.loads(str(props["fingerprint"])),
            "moments": json.loads(str(props["moments"])),
        }
    if len(silos) < job.min_silos:
        raise InvalidInputError(
            f"{len(silos)} silo(s) answered within {job.join_timeout:g} s; "
            f"the job needs at least {job.min_silos}"
        )
    columns = {json.dumps(s["columns"]) for s in silos.values()}
    if len(columns) > 1:
        raise InvalidInputError(
            "the silos' columns differ: "
            + "; ".join(f"{n}: {', '.join(s['columns'][:8])}" for n, s in sorted(silos.items()))
        )
    return silos


def make_strategy(
    job: FederatedConfig, n_silos: int, columns: list[str], scaler: str
) -> legacy.Strategy:
    """Flower's FedAvg or FedProx, wrapped in Flower's DP strategy when the job asks."""

    def fit_config(round_: int) -> dict[str, Any]:
        return {"round": round_, "scaler": scaler}

    common: dict[str, Any] = {
        "fraction_fit": 1.0,
        "fraction_evaluate": 1.0,
        "min_fit_clients": job.min_silos,
        "min_evaluate_clients": job.min_silos,
        "min_available_clients": job.min_silos,
        "accept_failures": True,
        "on_fit_config_fn": fit_config,
        "on_evaluate_config_fn": fit_config,
        "initial_parameters": ndarrays_to_parameters(trainer.initial_weights(len(columns))),
        "fit_metrics_aggregation_fn": _weighted,
        "evaluate_metrics_aggregation_fn": _weighted,
    }
    inner: legacy.Strategy
    if job.strategy == "fedprox":
        inner = legacy.FedProx(proximal_mu=job.proximal_mu, **common)
    else:
        inner = legacy.FedAvg(**common)
    if job.dp is None:
        return inner
    wrapper = (
        legacy.DifferentialPrivacyServerSideFixedClipping
        if job.dp.mode == "central-server-fixed"
        else legacy.DifferentialPrivacyClientSideFixedClipping
    )
    return wrapper(
        inner,
        noise_multiplier=job.dp.noise_multiplier,
        clipping_norm=job.dp.clipping_norm,
        num_sampled_clients=n_silos,
    )


def train(
    grid: Grid,
    context: Context,
    job: FederatedConfig,
    expected: int,
    on_round: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Profile the silos, run the rounds, and return the report (global weights included)."""
    started = time.perf_counter()
    silos = ask_silos(grid, job, expected)
    columns = next(iter(silos.values()))["columns"]
    means, scales = trainer.pooled_scaler([s["moments"] for s in silos.values()], columns)
    scaler = json.dumps([means, scales])
    accounting = Accounting(job.dp, len(silos)) if job.dp is not None else None
    log = RoundLog(on_round)
    strategy = Recording(make_strategy(job, len(silos), columns, scaler), log)
    legacy_context = LegacyContext(
        context=context,
        config=ServerConfig(num_rounds=job.rounds, round_timeout=job.round_timeout),
        strategy=strategy,
    )
    fit_workflow = None
    if job.secure_aggregation is not None:
        sa = job.secure_aggregation
        fit_workflow = SecAggPlusWorkflow(
            num_shares=min(sa.num_shares, len(silos)),
            reconstruction_threshold=min(sa.reconstruction_threshold, len(silos)),
            clipping_range=sa.clipping_range,
            # Each silo's weight (its rows) scales its update before quantisation; at
            # Flower's default (1000) a bank's 50,000 rows overflowed the clipping range.
            max_weight=float(max(s["moments"]["n"] for s in silos.values())),
            timeout=job.round_timeout,
        )
    DefaultWorkflow(fit_workflow=fit_workflow)(grid, legacy_context)
    if log.weights is None:
        raise InvalidInputError("no round finished: every silo failed or timed out")
    answered = [len(r.get("trained") or {}) for r in log.rounds]
    report: dict[str, Any] = {
        "format": "shipyard.federated/1",
        "job": json.loads(job.to_json()),
        "runtime": "flower",
        "silos": {
            name: {"fingerprint": s["fingerprint"], "rows_trained": s["moments"]["n"]}
            for name, s in sorted(silos.items())
        },
        "columns": columns,
        "scaler": {"mean": means, "scale": scales},
        "rounds": log.rounds,
        "final": log.rounds[-1].get("silos", {}) if log.rounds else {},
        "seconds": round(time.perf_counter() - started, 3),
        "weights": [w.tolist() for w in log.weights],
    }
    if accounting is not None:
        report["privacy"] = accounting.spent(answered)
    report["privacy_statement"] = statement(report.get("privacy"))
    return report


class PromptGrid(Grid):  # type: ignore[misc]
    """A deployment's Grid, asked for replies every few milliseconds rather than Flower's
    fixed 3 s between pulls (the rest is the wrapped Grid: Flower's public push and pull)."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid

    def set_run(self, run: Any) -> None:
        self.grid.set_run(run)

    @property
    def run(self) -> Any:
        return self.grid.run

    def create_message(self, *args: Any, **kwargs: Any) -> Message:
        return self.grid.create_message(*args, **kwargs)

    def get_node_ids(self) -> Any:
        return self.grid.get_node_ids()

    def push_messages(self, messages: Any) -> Any:
        return self.grid.push_messages(messages)

    def pull_messages(self, message_ids: Any) -> Any:
        return self.grid.pull_messages(message_ids)

    def send_and_receive(self, messages: Any, *, timeout: float | None = None) -> Any:
        waiting = set(self.push_messages(messages))
        deadline = None if timeout is None else time.monotonic() + timeout
        replies: list[Message] = []
        pause = 0.01
        while waiting and (deadline is None or time.monotonic() < deadline):
            got = list(self.pull_messages(waiting))
            replies.extend(got)
            waiting -= {m.metadata.reply_to_message_id for m in got}
            if waiting:
                time.sleep(pause)
                pause = min(pause * 1.5, 0.25)
        return replies


server_app = ServerApp()


@server_app.main()  # type: ignore[untyped-decorator]
def _server_main(grid: Grid, context: Context) -> None:
    """The coordinator in a Flower deployment: the job's run is opened by whoever started it
    (``shipyard.federated.deployment``), named in the run config; the rounds and the report
    land in it."""
    from shipyard.federated.service import attach

    job = job_of(context)
    job_run = attach(str(context.run_config["shipyard-run"]))
    expected = int(str(context.run_config.get("silos", job.min_silos)))
    try:
        report = train(PromptGrid(grid), context, job, expected, job_run.round_hook(None))
        report["runtime"] = "flower deployment (SuperLink and SuperNodes)"
        job_run.keep(report)
    except BaseException as exc:
        job_run.fail(f"{type(exc).__name__}: {exc}")
        raise
