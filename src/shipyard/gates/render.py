"""A gate report as JUnit XML (CI test reports), Markdown (job summaries) and HTML."""

from __future__ import annotations

import math
from typing import Any
from xml.etree import ElementTree as ET

from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape

from shipyard.gates.report import GateReport


def to_junit(report: GateReport) -> str:
    """JUnit XML: one test case per check, failures and skips marked."""
    failures = sum(c.status == "failed" for c in report.checks)
    skipped = sum(c.status == "skipped" for c in report.checks)
    suite = ET.Element(
        "testsuite",
        name=f"shipyard gates {report.model} v{report.version}",
        tests=str(len(report.checks)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        time=f"{report.seconds:.3f}",
        timestamp=iso(report.created_at),
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("model", report.model),
        ("version", str(report.version)),
        ("report_id", report.id),
        ("policy_digest", report.policy_digest),
        ("data_digest", report.data_digest),
        ("rows", str(report.rows)),
    ):
        ET.SubElement(props, "property", name=key, value=value)
    for check in report.checks:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"shipyard.gates.{report.model}.v{report.version}",
            name=check.name,
            time=f"{check.seconds:.3f}",
        )
        if check.status == "failed":
            node = ET.SubElement(case, "failure", message=check.message, type=check.kind)
            node.text = f"{check.message}\nthreshold: {check.threshold}"
        elif check.status == "skipped":
            ET.SubElement(case, "skipped", message=check.message)
        else:
            ET.SubElement(case, "system-out").text = check.message
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode")


def to_markdown(report: GateReport) -> str:
    """A Markdown summary (GitHub job summary)."""
    verdict = "✅ passed" if report.passed else "❌ failed"
    lines = [
        f"### Gate report: {report.model} v{report.version} {verdict}",
        "",
        f"{report.rows:,} evaluation rows · policy `{report.policy_digest[:12]}` · "
        f"data `{report.data_digest[:12]}` · report `{report.id}`",
        "",
        "| check | status | value | threshold | detail |",
        "|---|---|---|---|---|",
    ]
    for c in report.checks:
        value = "" if c.value is None else f"{c.value:.4g}"
        detail = c.message.replace("|", "\\|")
        lines.append(f"| {c.name} | {c.status} | {value} | {c.threshold} | {detail} |")
    return "\n".join(lines) + "\n"


def num(value: Any) -> str:
    """A number for a table cell (4 significant digits; '-' for none)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def pct(value: Any, top: float = 1.0) -> int:
    """Bar width in pixels for ``value`` on a 0..top scale."""
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return 0
    return int(max(0.0, min(1.0, value / top)) * 120)


def iso(ms: int) -> str:
    """Epoch milliseconds as an ISO 8601 UTC time."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def to_html(report: GateReport) -> str:
    """One self-contained page: checks, fairness by group, drift by column, intervals."""
    template = environment().get_template("gate_report.html.j2")
    return template.render(r=report, num=num, pct=pct, when=iso(report.created_at))


def environment(*packages: str) -> Environment:
    """Jinja with autoescaping, loading templates from these packages and from gates'."""
    loaders = [PackageLoader(p, "templates") for p in (*packages, "shipyard.gates")]
    return Environment(loader=ChoiceLoader(loaders), autoescape=select_autoescape(default=True))
