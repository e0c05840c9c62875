"""The model server at twice its capacity: shed early (503) or queue without bound.

One gradient boosting model on 20 features, 200 rows per request, one worker on 127.0.0.1.
wrk measures capacity first; then an open-loop client (raw sockets, keep-alive connections,
opened as needed) sends requests at twice that rate for a fixed time (each with a 2 s timeout), once with Shipyard's admission control
(default `--max-queue 64 --queue-timeout 1`) and once with it opened wide (the behaviour
before it existed). Printed per mode: answered, shed with 503, other 5xx, client
timeouts, latency of the answered ones, and the time until a fresh 1-row request is
answered in under 100 ms again once the load stops (recovery). Bounded in requests and
time; traffic to 127.0.0.1 only.

    ../.venv/bin/python overload.py [--seconds 10] [--rows 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pandas as pd
from _common import BIN, free_port, report, start, stop
from serving import wrk
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier

COLS = [f"x{i}" for i in range(20)]
MODES = {
    "admission control (default)": ["--max-queue", "64", "--queue-timeout", "1"],
    "unbounded queue (before)": ["--max-queue", "1000000", "--queue-timeout", "600"],
}


class _Pool:
    """Keep-alive connections, as a load balancer holds them: idle ones are reused, a new
    one is opened when all are busy (open loop: the send rate never waits for answers)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def send(self, request: bytes, timeout: float) -> tuple[str, float]:
        started = time.perf_counter()
        conn = self.idle.pop() if self.idle else None
        try:
            async with asyncio.timeout(timeout):
                if conn is None:
                    conn = await asyncio.open_connection(self.host, self.port)
                reader, writer = conn
                writer.write(request)
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            if conn is not None:
                conn[1].close()
            return "timeout", 0.0
        self.idle.append(conn)
        parts = head.split(b" ", 2)
        code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        outcome = (
            "ok" if code == 200 else "shed" if code in (429, 503) else
            "other_5xx" if code >= 500 else "other"
        )  # fmt: skip
        return outcome, (time.perf_counter() - started) * 1000

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def open_loop(url: str, body: bytes, rate: float, seconds: float) -> dict[str, object]:
    """Send ``rate`` requests/s for ``seconds`` whatever the answers; classify outcomes.

    Raw sockets, not an HTTP library: the generator must stay far cheaper than the server
    so that the offered rate really is twice what the server can do.
    """
    pool = _Pool(*(lambda p: (p.hostname or "127.0.0.1", p.port or 80))(urlsplit(url)))
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    tasks = []
    begin = time.perf_counter()
    total = int(rate * seconds)
    for i in range(total):
        delay = begin + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(pool.send(request, 2.0)))
    sent_for = time.perf_counter() - begin
    results = await asyncio.gather(*tasks)
    pool.close()
    outcomes = dict.fromkeys(("ok", "shed", "other_5xx", "other", "timeout"), 0)
    for outcome, _ in results:
        outcomes[outcome] += 1
    lat = np.array([ms for o, ms in results if o == "ok"] or [np.nan])
    return {
        "sent": total,
        "offered_rps": total / sent_for,
        **outcomes,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
    }


def recovery(url: str, body: bytes, limit: float = 120.0) -> float:
    """Seconds until a fresh request is answered in under 100 ms (bounded by ``limit``)."""
    started = time.monotonic()
    with httpx.Client(timeout=5.0) as client:
        while time.monotonic() - started < limit:
            t = time.perf_counter()
            try:
                answer = client.post(
                    url, content=body, headers={"content-type": "application/json"}
                )
                if answer.status_code == 200 and time.perf_counter() - t < 0.1:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    return float("inf")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rows", type=int, default=200)
    args = parser.parse_args()

    X, y = make_classification(5000, 20, n_informative=10, random_state=0)
    frame = pd.DataFrame(X, columns=COLS)
    model = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(frame, y)
    work = Path(tempfile.mkdtemp(prefix="bench-overload-"))
    import shipyard

    shipyard.set_uri(str(work / "shipyard"))
    shipyard.register_model("bench", model, frame[:5])
    shipyard.set_uri(None)

    def body(rows: int) -> bytes:
        data = frame[:rows].to_numpy().round(6).tolist()
        return json.dumps({"dataframe_split": {"columns": COLS, "data": data}}).encode()

    heavy, light = body(args.rows), body(1)
    env = {"SHIPYARD_URI": str(work / "shipyard")}
    rows: list[tuple[str, str]] = []
    for mode, flags in MODES.items():
        port = free_port()
        url = f"http://127.0.0.1:{port}/invocations"
        proc = start(
            [str(BIN / "shipyard"), "serve", "models:/bench/1", "--port", str(port),
             "--no-predlog", *flags],
            f"http://127.0.0.1:{port}/v2/health/ready", env=env,
        )  # fmt: skip
        try:
            capacity = wrk(url, heavy.decode(), 8, 5)["rps"]
            result = asyncio.run(open_loop(url, heavy, 2 * capacity, args.seconds))
            back = recovery(url, light)
        finally:
            stop(proc)
        rows.append(
            (
                mode,
                f"capacity {capacity:.0f} req/s; sent {result['sent']} at "
                f"{result['offered_rps']:.0f} req/s: answered {result['ok']} "
                f"(p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms), "
                f"shed {result['shed']}, other 5xx {result['other_5xx']}, "
                f"client timeouts {result['timeout']}; recovered in {back:.2f} s",
            )
        )
    report(f"Twice capacity for {args.seconds:g} s, {args.rows} rows per request", rows)


if __name__ == "__main__":
    main()
