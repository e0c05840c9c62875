"""Step output capture follows the step's context, not the process."""

from __future__ import annotations

import threading
import time

from shipyard.pipelines import capture
from shipyard.pipelines.capture import captured


def test_steps_on_threads_side_by_side_keep_only_their_own_output() -> None:
    texts: dict[str, str] = {}

    def step(name: str) -> None:
        with captured() as out:
            for i in range(20):
                print(f"{name} line {i}")
                time.sleep(0.001)
        texts[name] = out.text()

    threads = [threading.Thread(target=step, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in ("a", "b"):
        lines = texts[name].splitlines()
        assert lines == [f"{name} line {i}" for i in range(20)]
    print("outside any step")  # nothing is captured once no step is active


def test_a_capture_keeps_the_tail_within_its_limit(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(capture, "LIMIT", 100)
    with captured() as out:
        for i in range(50):
            print(f"line {i:03d}")
    text = out.text()
    assert text.startswith("[") and "earlier characters dropped" in text
    assert text.rstrip().endswith("line 049")
    assert len(text) < 200
