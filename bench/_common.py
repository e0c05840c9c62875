"""Helpers shared by the benchmarks: servers on 127.0.0.1, timing, and figure tables."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

os.environ.update(
    RAY_USAGE_STATS_ENABLED="0",
    DO_NOT_TRACK="1",
    MLFLOW_DISABLE_TELEMETRY="true",
    PREFECT_SERVER_ANALYTICS_ENABLED="false",
    PREFECT_LOGGING_LEVEL="WARNING",
    FLWR_TELEMETRY_ENABLED="0",
    FLWR_DISABLE_UPDATE_CHECK="1",
)
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    cmd: list[str], health: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.Popen[bytes]:
    """Start a server process and wait until ``health`` answers 200 (bounded)."""
    # Its own session: stop() ends the whole group (mlflow server leaves uvicorn workers and
    # job consumers behind when only its CLI process is stopped).
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited early")
        try:
            if httpx.get(health, timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    stop(proc)
    raise RuntimeError(f"{health} did not answer within {timeout}s")


def start_mlflow_server(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`mlflow server` on 127.0.0.1 (one worker, SQLite in ``folder``) and its URL."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = start(
        [
            str(BIN / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{folder / 'mlflow.db'}",
            "--default-artifact-root",
            str(folder / "mlruns"),
        ],
        f"http://127.0.0.1:{port}/health",
    )
    return proc, f"http://127.0.0.1:{port}"


def group_cpu_seconds(session: int) -> float:
    """CPU seconds used so far by every live process of a session (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        # After the command's name: state, ppid, pgrp, session, ... utime (12), stime (13).
        if int(fields[3]) == session:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def settle(
    proc: subprocess.Popen[bytes], idle: float = 0.05, window: float = 2.0, limit: float = 120
) -> float:
    """Wait until a server and everything it started are idle: less than ``idle`` CPU
    seconds per second over ``window`` (``mlflow server`` starts five job consumers that
    import MLflow, up to 40 CPU seconds, after its health check answers). Returns the
    seconds waited."""
    began = time.monotonic()
    used = group_cpu_seconds(proc.pid)
    while time.monotonic() - began < limit:
        time.sleep(window)
        now = group_cpu_seconds(proc.pid)
        if now - used < idle * window:
            break
        used = now
    return time.monotonic() - began


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process we started and everything it started (its process group, by PID)."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group


def report(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n{title}")
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
