"""Tracing rules: references not values, typed parameters, cycles refused."""

from __future__ import annotations

import pytest

from shipyard.core.errors import InvalidInputError, PipelineError
from shipyard.pipelines.graph import Graph, Node, PipelineDefinition, StepOutput, step


@step
def make(n: int) -> list:
    return list(range(n))


@step
def total(values: list) -> int:
    return sum(values)


@step
def pair(values: list) -> tuple[int, int]:
    return min(values), max(values)


def definition(fn):
    return PipelineDefinition(fn)


def test_steps_outside_a_pipeline_are_plain_calls() -> None:
    assert total(make(4)) == 6


def test_tracing_builds_nodes_and_references() -> None:
    def flow(n: int = 3):
        values = make(n)
        low, high = pair(values)
        return total(values), low, high

    graph = definition(flow).build({"n": 3})
    assert list(graph.nodes) == ["make", "pair", "total"]
    assert graph.order().index("make") < graph.order().index("total")
    assert [o.name for o in graph.outputs] == ["output", "output_0", "output_1"]
    assert graph.downstream("make") == {"pair", "total"}


def test_the_same_step_twice_gets_distinct_names() -> None:
    def flow():
        return total(make(2)), total(make(3))

    assert list(definition(flow).build({}).nodes) == ["make", "total", "make_2", "total_2"]


def test_a_reference_used_as_a_value_names_the_step() -> None:
    def flow():
        values = make(3)
        if values:  # a value test on a reference
            return total(values)
        return None

    with pytest.raises(PipelineError, match="'make'"):
        definition(flow).build({})


def test_a_reference_passed_outside_a_pipeline_is_refused() -> None:
    holder = {}

    def flow():
        holder["ref"] = make(3)
        return holder["ref"]

    definition(flow).build({})
    with pytest.raises(PipelineError, match="reference"):
        total(holder["ref"])


def test_cycles_are_refused_with_the_cycle_named() -> None:
    graph = Graph("loop", {})
    graph.nodes["a"] = Node("a", total, {"values": StepOutput("b", "output", list, 0)}, ["output"])
    graph.nodes["b"] = Node("b", total, {"values": StepOutput("a", "output", list, 0)}, ["output"])
    with pytest.raises(PipelineError, match="cycle"):
        graph.order()


def test_parameters_are_typed_from_the_signature() -> None:
    def flow(n: int, rate: float = 0.5, name: str = "x"):
        return make(n)

    pipe = definition(flow)
    assert pipe.validate_params({"n": 3}) == {"n": 3, "rate": 0.5, "name": "x"}
    assert pipe.validate_params({"n": "7", "rate": "0.1"}, from_strings=True)["n"] == 7
    with pytest.raises(InvalidInputError, match="needs parameter 'n'"):
        pipe.validate_params({})
    with pytest.raises(InvalidInputError, match="must be int"):
        pipe.validate_params({"n": "abc"}, from_strings=True)
    with pytest.raises(InvalidInputError, match="must be int"):
        pipe.validate_params({"n": "3"})
    with pytest.raises(InvalidInputError, match="no parameter 'm'"):
        pipe.validate_params({"n": 1, "m": 2})


def test_step_options_are_checked() -> None:
    with pytest.raises(InvalidInputError, match="retries"):
        step(retries=-1)(lambda: 1)
    with pytest.raises(InvalidInputError, match="timeout"):
        step(timeout=0)(lambda: 1)
    with pytest.raises(InvalidInputError, match="resources"):
        step(resources={"gpus": 1})(lambda: 1)


def test_a_pipeline_without_steps_is_refused() -> None:
    def empty():
        return None

    with pytest.raises(PipelineError, match="calls no step"):
        definition(empty).build({})
