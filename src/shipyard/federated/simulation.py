"""Flower's apps in one process: a Grid that hands each message to the silo's ClientApp.

Flower's own simulation engine needs Ray (``flwr[simulation]`` pins a Ray release) and
``run_simulation`` is deprecated; this Grid runs the very ClientApp and ServerApp objects a
deployment runs, each silo in a thread with its own Flower ``Context``. Messages are
deep-copied both ways, as a transport would (Flower's SecAgg+ mod consumes the config it is
sent), and a silo that raises answers with a Flower error reply, as a SuperNode does.
"""

from __future__ import annotations

import concurrent.futures as cf
import copy
import itertools
from collections.abc import Iterable
from typing import Any

from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

#: The node id the coordinator's messages carry (Flower's SuperLink id).
COORDINATOR_NODE = 1
CLIENT_APP_ERROR = 2  # Flower's ErrorCode.CLIENT_APP_RAISED_EXCEPTION


class LocalGrid(Grid):  # type: ignore[misc]  # Flower is untyped where it is absent
    """Silos as threads of this process, each answering through its ClientApp."""

    def __init__(self, app: ClientApp, contexts: dict[int, Context], run_id: int = 1) -> None:
        self._app = app
        self._contexts = contexts
        self._run = Run.create_empty(run_id)
        self._pool = cf.ThreadPoolExecutor(max(1, len(contexts)), thread_name_prefix="silo")
        self._pending: dict[str, tuple[Message, cf.Future[Message]]] = {}
        self._ids = itertools.count(1)
        self.dropped: set[int] = set()
        TaskIdentity.run_id = run_id
        TaskIdentity.node_id = COORDINATOR_NODE
        TaskIdentity.task_id = run_id

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return [n for n in self._contexts if n not in self.dropped]

    def _answer(self, message: Message) -> Message:
        node = message.metadata.dst_node_id
        try:
            return copy.deepcopy(self._app(message, self._contexts[node]))
        except Exception as exc:  # noqa: BLE001 - a silo's failure is its reply, as in Flower
            return Message(
                Error(code=CLIENT_APP_ERROR, reason=f"{type(exc).__name__}: {exc}"),
                reply_to=message,
            )

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        ids = []
        for message in messages:
            if message.metadata.dst_node_id in self.dropped:
                continue
            message_id = f"msg-{next(self._ids)}"
            message.metadata.__dict__["_message_id"] = message_id
            message.metadata.__dict__["_run_id"] = self._run.run_id
            sent = copy.deepcopy(message)
            self._pending[message_id] = (sent, self._pool.submit(self._answer, sent))
            ids.append(message_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        out = []
        for message_id in message_ids:
            entry = self._pending.get(message_id)
            if entry is not None and entry[1].done():
                out.append(entry[1].result())
                del self._pending[message_id]
        return out

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        ids = list(self.push_messages(messages))
        cf.wait([self._pending[i][1] for i in ids], timeout=timeout)
        replies = list(self.pull_messages(ids))
        for late in ids:  # a silo that missed the round's deadline: its answer is dropped
            self._pending.pop(late, None)
        return replies

    def close(self) -> None:
        """Stop the silo threads (a silo still inside a round is not waited for)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def node_context(node_id: int, silo: str, run_config: dict[str, Any]) -> Context:
    """The Flower Context a silo's ClientApp sees in a simulation."""
    return Context(
        run_id=1,
        node_id=node_id,
        node_config={"silo": silo},
        state=RecordDict(),
        run_config=dict(run_config),
    )


def coordinator_context(run_config: dict[str, Any]) -> Context:
    """The Flower Context the ServerApp sees in a simulation."""
    return Context(
        run_id=1,
        node_id=COORDINATOR_NODE,
        node_config={},
        state=RecordDict(),
        run_config=dict(run_config),
    )
