"""Model cards: one structured document per version, rendered to Markdown and HTML.

The sections follow Google's Model Card Toolkit (``model_details``, ``model_parameters``,
``quantitative_analysis``, ``considerations``); the stored card keeps Shipyard's richer
fields (lineage, data profile, ONNX parity), and :func:`to_mct` exports a document valid
against MCT's schema 0.0.2. The Markdown form carries Hugging Face model-card front matter
(``model-index`` with task, dataset and metrics) that ``huggingface_hub.ModelCard`` loads.
All renderings come from the same dictionary.
"""

from __future__ import annotations

import copy
import html
from collections.abc import Mapping
from typing import Any

import yaml

from shipyard.core.errors import InvalidInputError

#: The Model Card Toolkit schema :func:`to_mct` writes.
SCHEMA_VERSION = "0.0.2"
#: The stored card's own layout (it is not an MCT document: see :func:`to_mct`).
CARD_FORMAT = "shipyard.card/1"
#: Where an AutoML search keeps its report in the search's run; registration copies it into
#: the card (``model_parameters.search``), so a reviewer sees how the model was chosen.
SEARCH_REPORT = "automl/search.json"
#: Where a federated job keeps its report (silo fingerprints, rounds, per-silo evaluation,
#: privacy spent); registration copies it, less the weights, into ``model_parameters.federated``.
FEDERATED_REPORT = "federated/report.json"
#: The search run's tag naming the data it searched on (``… sha256:<digest>`` when the data
#: is a stored blob, such as a pipeline output): lineage follows it upstream.
DATA_SOURCE_TAG = "shipyard.automl.source"
SECTIONS = ("model_details", "model_parameters", "quantitative_analysis", "considerations")
EDITABLE = {
    "model_details": {"overview", "owners", "documentation", "licenses", "references"},
    "model_parameters": {"model_architecture", "data", "input_format", "output_format"},
    "quantitative_analysis": {"performance_metrics", "graphics"},
    "considerations": {"users", "use_cases", "limitations", "tradeoffs", "ethical_considerations"},
}


def new_card(
    *,
    name: str,
    version: int,
    description: str,
    flavor: str,
    model_class: str,
    signature: Mapping[str, Any],
    metrics: Mapping[str, float],
    lineage: Mapping[str, Any],
    data_profile: Mapping[str, Any] | None,
    onnx: Mapping[str, Any] | None,
    search: Mapping[str, Any] | None = None,
    federated: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The card a version starts with: what the registry knows, with blanks for people."""
    card: dict[str, Any] = {
        "format": CARD_FORMAT,
        "model_details": {
            "name": name,
            "version": {"name": str(version)},
            "overview": description,
            "owners": [],
            "references": [],
        },
        "model_parameters": {
            "model_architecture": f"{model_class} ({flavor})",
            "data": {"training": {"lineage": dict(lineage), "profile": data_profile or {}}},
            "input_format": signature.get("inputs"),
            "output_format": signature.get("outputs"),
            "onnx": dict(onnx or {}),
        },
        "quantitative_analysis": {
            "performance_metrics": [{"type": k, "value": v} for k, v in sorted(metrics.items())],
        },
        "considerations": {
            "users": [],
            "use_cases": [],
            "limitations": [],
            "tradeoffs": [],
            "ethical_considerations": [],
        },
    }
    if search:
        card["model_parameters"]["search"] = dict(search)
    if federated:
        card["model_parameters"]["federated"] = federated_summary(federated)
        card["considerations"]["limitations"].append(
            federated_summary(federated)["privacy_statement"]
        )
    return card


def federated_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """What a card keeps of a federated job: silos by fingerprint, the final per-silo
    evaluation, rounds and the privacy statement (never weights or rows)."""
    privacy = report.get("privacy")
    rounds = report.get("rounds") or []
    return {
        "job": report.get("job"),
        "runtime": report.get("runtime"),
        "silos": {
            name: {
                "sha256": (info.get("fingerprint") or {}).get("sha256"),
                "rows": (info.get("fingerprint") or {}).get("rows"),
                "label_rate": (info.get("fingerprint") or {}).get("label_rate"),
                "profile": (info.get("fingerprint") or {}).get("profile"),
            }
            for name, info in (report.get("silos") or {}).items()
        },
        "rounds": len(rounds),
        "global": rounds[-1].get("global", {}) if rounds else {},
        "per_silo": report.get("final") or {},
        "privacy": privacy,
        "privacy_statement": report.get("privacy_statement")
        or "Not differentially private: the job added no noise.",
        "secure_aggregation": (report.get("job") or {}).get("secure_aggregation"),
    }


def federated_lines(fed: Mapping[str, Any]) -> list[str]:
    """The Markdown section of a federated job: silos, per-silo evaluation, privacy."""
    job = fed.get("job") or {}
    lines = [
        "",
        "## Federated training",
        "",
        f"- Strategy: {job.get('strategy')} over {len(fed.get('silos') or {})} silos, "
        f"{fed.get('rounds')} rounds ({fed.get('runtime')})",
        f"- Secure aggregation: {(fed.get('secure_aggregation') or {}).get('protocol', 'off')}",
        f"- Privacy: {fed.get('privacy_statement')}",
        "",
        "| silo | data sha256 | rows | ROC AUC | selection rate | TPR | FPR |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, info in (fed.get("silos") or {}).items():
        ev = (fed.get("per_silo") or {}).get(name, {})
        lines.append(
            f"| {name} | {str(info.get('sha256'))[:16]}… | {info.get('rows')} | "
            f"{_num(ev.get('roc_auc'))} | {_num(ev.get('selection_rate'))} | "
            f"{_num(ev.get('true_positive_rate'))} | {_num(ev.get('false_positive_rate'))} |"
        )
    return lines


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "n/a"


def search_lines(search: Mapping[str, Any]) -> list[str]:
    """The Markdown section of an AutoML search: budget, trials, leaderboard, space."""
    budget = search.get("budget") or {}
    trials = search.get("trials") or {}
    metric = search.get("metric")
    lines = [
        "",
        "## Model search (AutoML)",
        "",
        f"- Task: {search.get('task')}, metric {metric} ({search.get('direction')}), "
        f"{search.get('folds')}-fold cross-validation on {search.get('rows')} rows",
        f"- Budget: {budget.get('used_seconds')} s used of {budget.get('seconds')} s",
        f"- Trials: {trials.get('total')} ({trials.get('complete')} complete, "
        f"{trials.get('pruned')} pruned, {trials.get('interrupted')} cut by the budget)",
        f"- Study: {(search.get('study') or {}).get('name')}",
        "",
        f"| trial | estimator | {metric} | ± | folds |",
        "|---|---|---|---|---|",
    ]
    for row in search.get("leaderboard") or []:
        lines.append(
            f"| {row.get('trial')} | {row.get('estimator')} | {row.get('cv_score'):.6g} | "
            f"{row.get('cv_std'):.3g} | {row.get('folds')} |"
        )
    lines += ["", "Search space:", ""]
    for family, params in (search.get("search_space") or {}).items():
        lines.append(f"- {family}: " + "; ".join(f"{k} {v}" for k, v in params.items()))
    for note in search.get("skipped") or []:
        lines.append(f"- not searched: {note}")
    return lines


def edit_card(card: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Apply ``{"section.field": value}`` edits (or nested ``{section: {field: value}}``)."""
    out = copy.deepcopy(dict(card))
    flat: dict[str, Any] = {}
    for key, value in changes.items():
        if "." not in key and isinstance(value, Mapping):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    for key, value in flat.items():
        section, _, field = key.partition(".")
        if section not in EDITABLE or field not in EDITABLE[section]:
            allowed = ", ".join(f"{s}.{f}" for s in SECTIONS for f in sorted(EDITABLE[s]))
            raise InvalidInputError(f"card field {key!r} is not editable; editable: {allowed}")
        out.setdefault(section, {})[field] = value
    return out


def to_markdown(card: Mapping[str, Any]) -> str:
    """Markdown with Hugging Face-style front-matter."""
    details = card.get("model_details", {})
    params = card.get("model_parameters", {})
    quant = card.get("quantitative_analysis", {})
    cons = card.get("considerations", {})
    lineage = ((params.get("data") or {}).get("training") or {}).get("lineage") or {}
    metrics = [
        {"type": str(m["type"]), "value": m["value"], "name": str(m["type"])}
        for m in quant.get("performance_metrics", [])
        if isinstance(m.get("value"), int | float)
    ]
    front: dict[str, Any] = {
        "library_name": "shipyard",
        "tags": ["shipyard", "tabular", str(params.get("model_architecture", ""))],
    }
    if metrics:
        # Hugging Face's model-index: each result names its task and dataset.
        front["model-index"] = [
            {
                "name": str(details.get("name")),
                "results": [
                    {
                        "task": {"type": "tabular-classification"},
                        "dataset": {
                            "name": str(lineage.get("training_run") or "training data"),
                            "type": "tabular",
                        },
                        "metrics": metrics,
                    }
                ],
            }
        ]
    lines = ["---", yaml.safe_dump(front, sort_keys=False).strip(), "---", ""]
    lines.append(f"# {details.get('name')} version {details.get('version', {}).get('name')}")
    lines += ["", details.get("overview") or "_No overview yet._", ""]
    lines += ["## Model", "", f"- Architecture: {params.get('model_architecture')}"]
    owners = details.get("owners") or []
    lines.append(f"- Owners: {', '.join(map(str, owners)) if owners else '_not set_'}")
    onnx = params.get("onnx") or {}
    if onnx:
        lines.append(f"- ONNX: {onnx}")
    lines += ["", "## Inputs", "", "| column | type | missing allowed |", "|---|---|---|"]
    for col in _columns(params.get("input_format")):
        lines.append(f"| {col.get('name')} | {col.get('type')} | {not col.get('required', True)} |")
    training = (params.get("data") or {}).get("training") or {}
    lines += ["", "## Training data", ""]
    for key, value in (training.get("lineage") or {}).items():
        lines.append(f"- {key}: {value}")
    profile = training.get("profile") or {}
    if profile:
        lines += ["", f"Rows: {profile.get('rows')}", "", "| column | dtype | nulls | summary |"]
        lines.append("|---|---|---|---|")
        for col, info in (profile.get("columns") or {}).items():
            summary = {k: v for k, v in info.items() if k not in ("dtype", "nulls")}
            lines.append(f"| {col} | {info.get('dtype')} | {info.get('nulls')} | {summary} |")
    if params.get("search"):
        lines += search_lines(params["search"])
    if params.get("federated"):
        lines += federated_lines(params["federated"])
    lines += ["", "## Metrics", "", "| metric | value |", "|---|---|"]
    for m in quant.get("performance_metrics", []):
        lines.append(
            f"| {m['type']} | {m['value']:.6g} |"
            if isinstance(m["value"], float)
            else f"| {m['type']} | {m['value']} |"
        )
    for field in ("use_cases", "users", "limitations", "tradeoffs", "ethical_considerations"):
        lines += ["", f"## {field.replace('_', ' ').capitalize()}", ""]
        items = cons.get(field) or []
        lines += [f"- {i}" for i in (items if isinstance(items, list) else [items])] or [
            "_Not documented yet._"
        ]
    return "\n".join(lines) + "\n"


def _described(items: Any) -> list[dict[str, str]]:
    return [{"description": str(i)} for i in (items if isinstance(items, list) else [items]) if i]


def to_mct(card: Mapping[str, Any]) -> dict[str, Any]:
    """The card as a Model Card Toolkit document, valid against its schema 0.0.2."""
    import json

    details = card.get("model_details") or {}
    params = card.get("model_parameters") or {}
    quant = card.get("quantitative_analysis") or {}
    cons = card.get("considerations") or {}
    training = (params.get("data") or {}).get("training") or {}
    owners = [
        {"name": str(o.get("name", o))} if isinstance(o, Mapping) else {"name": str(o)}
        for o in details.get("owners") or []
    ]
    references = [
        {"reference": str(r)}
        for r in details.get("references") or []
        if str(r).startswith(("http://", "https://"))
    ]
    licenses = [{"custom_text": str(x)} for x in details.get("licenses") or []]
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "model_details": {
            "name": str(details.get("name", "")),
            "overview": str(details.get("overview") or ""),
            "owners": owners,
            "version": {"name": str((details.get("version") or {}).get("name", ""))},
            "licenses": licenses,
            "references": references,
        },
        "model_parameters": {
            "model_architecture": str(params.get("model_architecture") or ""),
            "data": [
                {
                    "name": "training",
                    "description": json.dumps(
                        {
                            "lineage": training.get("lineage") or {},
                            "profile": training.get("profile") or {},
                        },
                        default=str,
                    ),
                }
            ],
            "input_format": str(params.get("input_format") or ""),
            "output_format": str(params.get("output_format") or ""),
        },
        "quantitative_analysis": {
            "performance_metrics": [
                {"type": str(m["type"]), "value": str(m["value"])}
                for m in quant.get("performance_metrics", [])
            ],
        },
        "considerations": {
            "users": _described(cons.get("users") or []),
            "use_cases": _described(cons.get("use_cases") or []),
            "limitations": _described(cons.get("limitations") or []),
            "tradeoffs": _described(cons.get("tradeoffs") or []),
            "ethical_considerations": [
                {"name": str(e)} for e in cons.get("ethical_considerations") or [] if e
            ],
        },
    }
    if details.get("documentation"):
        out["model_details"]["documentation"] = str(details["documentation"])
    return out


def _columns(raw: Any) -> list[dict[str, Any]]:
    import json

    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return []
    return [c for c in raw or [] if isinstance(c, dict)]


def to_html(card: Mapping[str, Any]) -> str:
    """A standalone HTML page of the card (for validators who print or archive it)."""
    from jinja2 import Environment, select_autoescape

    env = Environment(autoescape=select_autoescape(default=True))
    template = env.from_string(_HTML)
    return template.render(
        card=card,
        columns=_columns((card.get("model_parameters") or {}).get("input_format")),
        esc=html.escape,
    )


_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Model card: {{ card.model_details.name }} v{{ card.model_details.version.name }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}
</style></head><body>
<h1>{{ card.model_details.name }} version {{ card.model_details.version.name }}</h1>
<p>{{ card.model_details.overview or "No overview yet." }}</p>
<h2>Model</h2><p>{{ card.model_parameters.model_architecture }}</p>
<h2>Inputs</h2><table><tr><th>column</th><th>type</th><th>missing allowed</th></tr>
{% for c in columns %}<tr><td>{{ c.name }}</td><td>{{ c.type }}</td>
<td>{{ not c.get("required", True) }}</td></tr>{% endfor %}</table>
<h2>Training data</h2><ul>
{% for k, v in (card.model_parameters.data.training.lineage or {}).items() %}
<li>{{ k }}: {{ v }}</li>{% endfor %}</ul>
{% set search = card.model_parameters.get("search") %}{% if search %}
<h2>Model search (AutoML)</h2>
<p>{{ search.task }}, {{ search.metric }} ({{ search.direction }}), {{ search.folds }}-fold
cross-validation on {{ search.rows }} rows; {{ search.budget.used_seconds }} s used of
{{ search.budget.seconds }} s; {{ search.trials.total }} trials ({{ search.trials.complete }}
complete, {{ search.trials.pruned }} pruned).</p>
<table><tr><th>trial</th><th>estimator</th><th>{{ search.metric }}</th><th>±</th><th>folds</th></tr>
{% for r in search.leaderboard %}<tr><td>{{ r.trial }}</td><td>{{ r.estimator }}</td>
<td>{{ "%.6g"|format(r.cv_score) }}</td><td>{{ "%.3g"|format(r.cv_std) }}</td>
<td>{{ r.folds }}</td></tr>{% endfor %}</table>
<ul>{% for family, params in search.search_space.items() %}<li>{{ family }}:
{% for k, v in params.items() %}{{ k }} {{ v }}; {% endfor %}</li>{% endfor %}</ul>
{% endif %}
<h2>Metrics</h2><table><tr><th>metric</th><th>value</th></tr>
{% for m in card.quantitative_analysis.performance_metrics %}
<tr><td>{{ m.type }}</td><td>{{ m.value }}</td></tr>{% endfor %}</table>
{% for field in ["use_cases", "users", "limitations", "tradeoffs", "ethical_considerations"] %}
<h2>{{ field.replace("_", " ").capitalize() }}</h2>
{% set items = card.considerations.get(field) or [] %}
{% if items %}<ul>{% for i in items %}<li>{{ i }}</li>{% endfor %}</ul>
{% else %}<p><em>Not documented yet.</em></p>{% endif %}
{% endfor %}
</body></html>
"""
