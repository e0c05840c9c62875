"""Build a pipeline's DAG by tracing: inside a @pipeline function, calling a step records a
node and returns references to its future outputs instead of running it.

Outside a pipeline a step is a plain function call, so steps stay unit-testable.
"""

from __future__ import annotations

import contextvars
import graphlib
import inspect
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from shipyard.core.errors import InvalidInputError, PipelineError
from shipyard.core.names import check_key
from shipyard.pipelines.models import StepOptions


class StepOutput:
    """A reference to an output of a step that has not run yet.

    It can only be passed to other steps (or returned) inside the pipeline function that
    made it; using it as a value raises a PipelineError naming the step.
    """

    __slots__ = ("_graph_id", "name", "node", "type_hint")

    def __init__(self, node: str, name: str, type_hint: Any, graph_id: int) -> None:
        self.node = node
        self.name = name
        self.type_hint = type_hint
        self._graph_id = graph_id

    def _misuse(self, *_: object) -> typing.NoReturn:
        raise PipelineError(
            f"output {self.name!r} of step {self.node!r} is a reference, not a value: inside "
            "a @pipeline function pass it to another step; its value exists only when the "
            "pipeline runs (load it from the PipelineRun afterwards)",
            step=self.node,
        )

    __bool__ = __iter__ = __len__ = __float__ = __int__ = __index__ = _misuse
    __add__ = __sub__ = __mul__ = __truediv__ = __getitem__ = __lt__ = __gt__ = _misuse

    def __repr__(self) -> str:
        return f"<StepOutput {self.node}.{self.name}>"


@dataclass
class Node:
    """One call of a step in a pipeline: its bound arguments and named outputs."""

    name: str
    step: Step
    args: dict[str, Any]
    outputs: list[str]

    def upstream(self) -> set[str]:
        """Names of the nodes this one reads from."""
        return {a.node for a in self.args.values() if isinstance(a, StepOutput)}


@dataclass
class Graph:
    """The traced DAG: nodes in insertion order and the pipeline's declared outputs."""

    pipeline: str
    params: dict[str, Any]
    target: str = ""
    nodes: dict[str, Node] = field(default_factory=dict)
    outputs: list[StepOutput] = field(default_factory=list)

    def order(self) -> list[str]:
        """Nodes in an order where every node comes after what it reads (stable)."""
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for name, node in self.nodes.items():
            sorter.add(name, *sorted(node.upstream()))
        try:
            return list(sorter.static_order())
        except graphlib.CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            raise PipelineError(f"pipeline {self.pipeline!r} has a cycle: {cycle}") from exc

    def downstream(self, name: str) -> set[str]:
        """Every node that depends, directly or not, on ``name``."""
        found: set[str] = set()
        frontier = [name]
        while frontier:
            current = frontier.pop()
            for other, node in self.nodes.items():
                if current in node.upstream() and other not in found:
                    found.add(other)
                    frontier.append(other)
        return found


_building: contextvars.ContextVar[Graph | None] = contextvars.ContextVar(
    "shipyard_pipeline_graph", default=None
)


def type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """Resolved annotations; a name that cannot be resolved (a class local to a function,
    under ``from __future__ import annotations``) counts as ``Any``."""
    try:
        return typing.get_type_hints(fn)
    except (NameError, TypeError):
        hints: dict[str, Any] = {}
        for name, value in getattr(fn, "__annotations__", {}).items():
            if isinstance(value, str):
                try:
                    value = eval(value, getattr(fn, "__globals__", {}))  # noqa: S307 - annotation text of the user's own code
                except (NameError, SyntaxError, TypeError):
                    value = Any
            hints[name] = value
        return hints


def _output_names(fn: Callable[..., Any]) -> tuple[list[str], list[Any]]:
    hints = type_hints(fn)
    ret = hints.get("return", Any)
    if (
        typing.get_origin(ret) is tuple
        and typing.get_args(ret)
        and typing.get_args(ret)[-1] is not Ellipsis
    ):
        args = list(typing.get_args(ret))
        return [f"output_{i}" for i in range(len(args))], args
    return ["output"], [ret]


class Step:
    """A function declared as a pipeline step, with its options."""

    def __init__(self, fn: Callable[..., Any], options: StepOptions) -> None:
        self.fn = fn
        self.options = options
        self.name = check_key(fn.__name__, "step name")
        self.signature = inspect.signature(fn)
        self.output_names, self.output_types = _output_names(fn)
        self.input_types = {k: v for k, v in type_hints(fn).items() if k != "return"}
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Record a node when tracing a pipeline; otherwise just call the function."""
        graph = _building.get()
        if graph is None:
            for value in (*args, *kwargs.values()):
                if isinstance(value, StepOutput):
                    value._misuse()
            return self.fn(*args, **kwargs)
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise PipelineError(f"step {self.name!r}: {exc}", step=self.name) from exc
        bound.apply_defaults()
        for value in bound.arguments.values():
            if isinstance(value, StepOutput) and value._graph_id != id(graph):
                raise PipelineError(
                    f"step {self.name!r} got output {value.name!r} of step {value.node!r} "
                    "from another pipeline; outputs cannot cross pipelines",
                    step=self.name,
                )
        name = self.name
        suffix = 2
        while name in graph.nodes:
            name = f"{self.name}_{suffix}"
            suffix += 1
        graph.nodes[name] = Node(name, self, dict(bound.arguments), list(self.output_names))
        refs = [
            StepOutput(name, out, tp, id(graph))
            for out, tp in zip(self.output_names, self.output_types, strict=True)
        ]
        return refs[0] if len(refs) == 1 and self.output_names == ["output"] else tuple(refs)

    def __repr__(self) -> str:
        return f"<Step {self.name}>"


class PipelineDefinition:
    """A function declared as a pipeline: typed parameters, traced into a Graph on demand."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        schedule: str | None = None,
        timezone: str = "UTC",
        cache: bool = True,
    ) -> None:
        self.fn = fn
        self.name = check_key(name or fn.__name__, "pipeline name")
        self.schedule = schedule
        self.timezone = timezone
        self.cache = cache
        self.signature = inspect.signature(fn)
        self.param_types = {k: v for k, v in type_hints(fn).items() if k != "return"}
        source = inspect.getsourcefile(fn)
        # Where to import the pipeline from again (``shipyard pipeline resume``).
        self.target = f"{source}:{fn.__name__}" if source else f"{fn.__module__}:{fn.__name__}"
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def validate_params(
        self, params: Mapping[str, Any], *, from_strings: bool = False
    ) -> dict[str, Any]:
        """Check parameters against the signature; ``from_strings`` parses CLI text."""
        unknown = set(params) - set(self.signature.parameters)
        if unknown:
            raise InvalidInputError(
                f"pipeline {self.name!r} has no parameter {sorted(unknown)[0]!r}; it takes "
                f"{', '.join(self.signature.parameters) or 'no parameters'}"
            )
        out: dict[str, Any] = {}
        for pname, param in self.signature.parameters.items():
            if pname not in params:
                if param.default is inspect.Parameter.empty:
                    raise InvalidInputError(
                        f"pipeline {self.name!r} needs parameter {pname!r}", parameter=pname
                    )
                out[pname] = param.default
                continue
            adapter: TypeAdapter[Any] = TypeAdapter(self.param_types.get(pname, Any))
            value = params[pname]
            try:
                if from_strings and isinstance(value, str):
                    out[pname] = adapter.validate_strings(value)
                else:
                    out[pname] = adapter.validate_python(value, strict=not from_strings)
            except ValidationError as exc:
                want = getattr(
                    self.param_types.get(pname), "__name__", str(self.param_types.get(pname))
                )
                raise InvalidInputError(
                    f"pipeline {self.name!r}: parameter {pname!r} must be {want}; got {value!r}",
                    parameter=pname,
                ) from exc
        return out

    def build(self, params: Mapping[str, Any]) -> Graph:
        """Trace the pipeline function into a Graph for these (validated) parameters."""
        graph = Graph(self.name, dict(params), self.target)
        token = _building.set(graph)
        try:
            result = self.fn(**params)
        finally:
            _building.reset(token)
        for ref in _flatten(result):
            if ref._graph_id != id(graph):
                raise PipelineError(
                    f"pipeline {self.name!r} returned an output of another pipeline"
                )
            graph.outputs.append(ref)
        if not graph.nodes:
            raise PipelineError(f"pipeline {self.name!r} calls no step")
        graph.order()  # refuse cycles now
        return graph


def _flatten(result: Any) -> Iterator[StepOutput]:
    if isinstance(result, StepOutput):
        yield result
    elif isinstance(result, tuple | list):
        for item in result:
            yield from _flatten(item)
    elif isinstance(result, dict):
        for item in result.values():
            yield from _flatten(item)


def step(
    fn: Callable[..., Any] | None = None,
    *,
    cache: bool = True,
    retries: int = 0,
    retry_delay_seconds: float | list[float] = 0.0,
    timeout: float | None = None,
    resources: Mapping[str, float] | None = None,
    environment: list[str] | None = None,
) -> Any:
    """Declare a pipeline step: ``@step`` or ``@step(cache=False, retries=3, timeout=60)``."""

    def wrap(func: Callable[..., Any]) -> Step:
        if retries < 0:
            raise InvalidInputError(f"retries must be >= 0; got {retries}")
        if timeout is not None and timeout <= 0:
            raise InvalidInputError(f"timeout must be > 0 seconds; got {timeout}")
        res = dict(resources or {})
        unknown = set(res) - {"cpus", "memory_mb"}
        if unknown:
            raise InvalidInputError(f"resources may name cpus and memory_mb; got {sorted(unknown)}")
        delay = (
            tuple(retry_delay_seconds)
            if isinstance(retry_delay_seconds, list)
            else float(retry_delay_seconds)
        )
        options = StepOptions(
            cache=cache,
            retries=retries,
            retry_delay_seconds=delay,
            timeout=timeout,
            cpus=float(res.get("cpus", 1.0)),
            memory_mb=int(res["memory_mb"]) if "memory_mb" in res else None,
            environment=tuple(environment or ()),
        )
        return Step(func, options)

    return wrap(fn) if fn is not None else wrap
