"""``shipyard monitor report``: one self-contained HTML page of a monitor's history.

Per-feature drift tables with reference-vs-current histograms (inline SVG, no scripts),
and status, drift share, data quality, performance and latency over time.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import escape


def bars_svg(hist: dict[str, Any], width: int = 360, height: int = 90, label: str = "") -> str:
    """Reference (grey) and current (blue) shares side by side, as an SVG."""
    ref, cur = hist["reference"], hist["current"]
    n = max(len(ref), 1)
    top = max([*ref, *cur, 1e-9])
    step = width / n
    title = escape(label or "reference and current distribution")
    parts = [
        f'<svg width="{width}" height="{height + 14}" role="img" aria-label="{title}">',
        f"<title>{title}</title>",
    ]
    for i, (a, b) in enumerate(zip(ref, cur, strict=True)):
        x = i * step
        ha, hb = a / top * height, b / top * height
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{height - ha:.1f}" width="{step / 2 - 1:.1f}" '
            f'height="{ha:.1f}" fill="#8c959f"/>'
        )
        parts.append(
            f'<rect x="{x + step / 2:.1f}" y="{height - hb:.1f}" '
            f'width="{step / 2 - 1:.1f}" height="{hb:.1f}" fill="#0969da"/>'
        )
    if hist["kind"] == "numeric":
        edges = hist["edges"]
        parts.append(f'<text x="0" y="{height + 12}" font-size="10">{edges[0]:.3g}</text>')
        parts.append(
            f'<text x="{width - 40}" y="{height + 12}" font-size="10">{edges[-1]:.3g}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _line(
    points: list[float | None], width: int = 520, height: int = 80, limit: float | None = None
) -> str:
    """A small time-series chart (SVG polyline), with an optional threshold line."""
    values = [p for p in points if p is not None]
    if not values:
        return "<em>no values</em>"
    lo, hi = (
        min([*values, *([limit] if limit is not None else [])]),
        max([*values, *([limit] if limit is not None else [])]),
    )
    span = hi - lo or 1.0
    step = width / max(len(points) - 1, 1)
    coords = " ".join(
        f"{i * step:.1f},{height - (p - lo) / span * height:.1f}"
        for i, p in enumerate(points)
        if p is not None
    )
    svg = [
        f'<svg width="{width}" height="{height + 4}" role="img">',
        f'<polyline fill="none" stroke="#0969da" stroke-width="2" points="{coords}"/>',
    ]
    if limit is not None:
        y = height - (limit - lo) / span * height
        svg.append(
            f'<line x1="0" x2="{width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#cf222e" '
            'stroke-dasharray="4"/>'
        )
    svg.append("</svg>")
    return "".join(svg)


def render_report(name: str, history: list[dict[str, Any]]) -> str:
    """The page for a monitor's stored results (oldest window first)."""
    env = Environment(
        loader=PackageLoader("shipyard.monitoring", "templates"),
        autoescape=select_autoescape(default=True),
    )
    latest = next((r for r in reversed(history) if r.get("status") != "no_data"), history[-1])
    metrics = sorted(
        {m for r in history for m in ((r.get("performance") or {}).get("metrics") or {})}
    )
    series = {
        "drift share": [(r.get("drift") or {}).get("drift_share") for r in history],
        "rows": [float(r.get("rows", 0)) for r in history],
        "latency p99 (s)": [(r.get("health") or {}).get("latency_p99") for r in history],
        **{
            f"{m}": [((r.get("performance") or {}).get("metrics") or {}).get(m) for r in history]
            for m in metrics
        },
    }
    return env.get_template("monitor_report.html.j2").render(
        name=name, history=history, latest=latest, series=series, bars=bars_svg, line=_line
    )
