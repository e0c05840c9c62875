"""Pipelines for the executor tests; module level so worker processes can import them."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd

import shipyard
from shipyard import pipeline, step


@step
def source(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(n)
    return pd.DataFrame({"x": rng.normal(size=n), "g": rng.integers(0, 3, n)})


@step
def summarise(df: pd.DataFrame, column: str, delay: float = 0.0) -> dict:
    time.sleep(delay)
    shipyard.log_metric("rows", len(df))
    return {"mean": float(df[column].mean()), "n": len(df)}


@step
def stack(a: dict, b: dict) -> np.ndarray:
    return np.array([a["mean"], b["mean"], a["n"]])


@pipeline
def fan(n: int = 100, delay: float = 0.0):
    df = source(n)
    return stack(summarise(df, "x", delay), summarise(df, "g", delay))


@step(timeout=1.0)
def hang(df: pd.DataFrame) -> int:
    time.sleep(60)
    return 0


@pipeline
def hanging(n: int = 10):
    return hang(source(n))


@step
def die(df: pd.DataFrame) -> int:
    os._exit(9)


@pipeline
def crashing(n: int = 10, delay: float = 0.5):
    df = source(n)
    return die(df), summarise(df, "x", delay)


@step
def where(n: int, delay: float = 1.0) -> str:
    """The Ray node this step ran on (the cluster test spreads them over two nodes)."""
    import ray

    time.sleep(delay)
    return str(ray.get_runtime_context().get_node_id())


@step
def nodes(a: str, b: str, c: str, d: str) -> list:
    return sorted({a, b, c, d})


@pipeline
def spread(delay: float = 1.0):
    return nodes(where(1, delay), where(2, delay), where(3, delay), where(4, delay))
