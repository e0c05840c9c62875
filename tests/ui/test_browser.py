"""What a team and a reviewer do in the web UI, in a real browser, against a real server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.bootstrap import local_backend
from shipyard.core.actor import acting_as
from shipyard.core.settings import Settings
from tests.ui.conftest import AXE, Site

pytestmark = [pytest.mark.xdist_group("ui"), pytest.mark.slow]

#: Each page a user opens; every one is checked with axe-core and kept as a screenshot.
PAGES = [
    ("home", "/"),
    ("runs", "/runs"),
    ("runs-filtered", "/runs?filter=metrics.val_roc_auc+>+0.5&order=metrics.val_roc_auc+DESC"),
    ("pipelines", "/pipelines"),
    ("models", "/models"),
    ("model", "/models/fraud"),
    ("version", "/models/fraud/versions/1"),
    ("deployments", "/deployments"),
    ("edge", "/edge"),
    ("monitors", "/monitors"),
    ("monitor", "/monitors/fraud-daily"),
    ("lineage", "/lineage?node=models:/fraud@champion"),
    ("project", "/project"),
    ("audit", "/audit?verify=true"),
]


def _context(chromium: Any, site: Site, who: str, **options: Any) -> Any:
    context = chromium.new_context(
        base_url=site.url, viewport={"width": 1360, "height": 900}, **options
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    login(page, site.tokens[who])
    return context, page


def login(page: Any, token: str) -> None:
    page.goto("/runs")
    assert "/login" in page.url  # no session yet: the server sends the browser to sign in
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/runs$"))


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical findings on the page (its id each)."""
    page.add_script_tag(path=str(AXE))
    found: list[str] = page.evaluate(
        "async () => (await axe.run(document)).violations.filter("
        "v => ['serious', 'critical'].includes(v.impact)).map(v => v.id)"
    )
    return found


def finish(page: Any, context: Any, shots: Path, name: str) -> None:
    """The page passes axe (no serious or critical finding); keep its screenshot; close."""
    found = serious_violations(page)
    assert not found, found
    shoot(page, shots, name)
    context.close()


def shoot(page: Any, shots: Path, name: str) -> None:
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def test_login_gives_a_strict_httponly_session_and_logout_revokes_it(
    chromium: Any, site: Site, shots: Path
) -> None:
    context = chromium.new_context(base_url=site.url)
    page = context.new_page()
    page.goto("/login")
    page.fill("#token", "shy_" + "x" * 43)
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "invalid token"
    shoot(page, shots, "login-refused")
    login(page, site.tokens["ana"])
    assert "ana" in page.locator("header .who").inner_text()
    (cookie,) = [c for c in context.cookies() if c["name"] == "shipyard_session"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie").find("shipyard_session") == -1
    page.click("header .who button")
    page.wait_for_url(re.compile(r"/login$"))
    # The session's token was revoked, not only forgotten by this browser.
    reused = httpx.get(
        f"{site.url}/api/v1/runs/search", cookies={"shipyard_session": cookie["value"]}
    )
    assert reused.status_code == 401
    assert reused.json()["error"] == "token revoked"
    context.close()


def test_find_a_run_by_filter_then_sort_by_a_metric(chromium: Any, site: Site, shots: Path) -> None:
    context, page = _context(chromium, site, "vic")
    page.fill("#filter", "metrics.val_roc_auc > 0.5 and attributes.run_name LIKE 'evaluate%'")
    page.click("form[role=search] button[type=submit]")
    rows = page.locator("#runs-table tbody tr")
    names = [rows.nth(i).locator("td").nth(1).inner_text() for i in range(rows.count())]
    assert names and all(n.startswith("evaluate") for n in names)
    # Sort by the metric from its column header: descending, then ascending.
    page.click("#runs-table thead a[title='sort by metrics.val_roc_auc']")
    header = page.locator("#runs-table thead th[aria-sort]")
    assert header.get_attribute("aria-sort") == "descending"
    column = [th.inner_text() for th in page.locator("#runs-table thead th").all()].index(
        header.inner_text()
    )
    values = [
        float(rows.nth(i).locator("td").nth(column).inner_text()) for i in range(rows.count())
    ]
    assert values == sorted(values, reverse=True)
    shoot(page, shots, "runs-sorted")
    # A filter the SDK would refuse is refused here too, with the same reason.
    page.fill("#filter", "metrics.val_roc_auc >")
    page.click("form[role=search] button[type=submit]")
    assert "filter" in page.locator("#search-error").inner_text()
    context.close()


def test_compare_two_runs_overlays_their_curves_and_diffs_params(
    chromium: Any, site: Site, shots: Path
) -> None:
    context, page = _context(chromium, site, "vic")
    page.goto("/runs?filter=attributes.run_name+=+'train_boosting'")
    boxes = page.locator("#runs-table input[name=run]")
    assert boxes.count() >= 2
    boxes.nth(0).check()
    boxes.nth(1).check()
    assert page.locator("#compare-form button[type=submit]").inner_text() == "Compare 2 runs"
    page.click("#compare-form button[type=submit]")
    page.wait_for_url(re.compile(r"/compare\?"))
    chart = page.locator("[data-chart]").first
    chart.locator("canvas").wait_for()
    # Both runs' full curves are drawn: every logged step, not a sample of them.
    ids = re.findall(r"run=(run_\w+)", page.url)
    steps: set[int] = set()
    for run_id in ids:
        history = httpx.get(
            f"{site.url}/api/v1/runs/{run_id}/metrics/history",
            params={"key": "curve_valid_log_loss"},
            headers={"Authorization": f"Bearer {site.tokens['vic']}"},
        ).json()
        steps |= {m["step"] for m in history["metrics"]}
    assert int(chart.get_attribute("data-drawn") or 0) == len(steps) > 10
    assert page.locator(".u-legend .u-series").count() == 3  # x plus one series per run
    assert page.locator("#params-diff tbody tr").count() >= 1
    shoot(page, shots, "compare")
    context.close()


def test_pipeline_run_shows_its_dag_with_status_and_cache_hits(
    chromium: Any, site: Site, shots: Path
) -> None:
    context, page = _context(chromium, site, "vic")
    page.goto("/pipelines")
    page.click(f"a[href='/pipelines/runs/{site.pipeline_run}']")
    nodes = page.locator("svg#dag g.node")
    assert nodes.count() >= 6
    assert page.locator("svg#dag path.edge").count() >= nodes.count() - 1
    steps = {
        nodes.nth(i).get_attribute("data-node"): nodes.nth(i).get_attribute("class")
        for i in range(nodes.count())
    }
    assert "generate" in steps and "train_boosting" in steps
    assert all("completed" in (c or "") or "cached" in (c or "") for c in steps.values())
    shoot(page, shots, "pipeline-dag")
    # The second (cached) run of the same pipeline shows its cache hits.
    page.goto("/pipelines?pipeline=fraud_training")
    cached = [
        int(t) for t in page.locator("#pipeline-runs tbody tr td:nth-child(7)").all_inner_texts()
    ]
    assert max(cached) >= 5
    context.close()


def test_an_approver_approves_and_the_author_is_refused_by_the_server(
    chromium: Any, site: Site, shots: Path
) -> None:
    version = f"/models/fraud/versions/{site.candidate}"
    context, page = _context(chromium, site, "ana")
    page.goto(version)
    page.fill("#note-request", "retrained on recent traffic")
    page.click("#request-promotion")
    assert "requested" in page.locator("#decision").inner_text()
    page.click("#approve")  # ana registered this version: the button is there, the server says no
    refusal = page.locator("#refusal").inner_text()
    assert "separation of duties" in refusal and "ana" in refusal, refusal
    shoot(page, shots, "approve-refused-author")
    context.close()
    viewer, page = _context(chromium, site, "vic")
    page.goto(version)
    page.click("#approve")
    assert "needs approver" in page.locator("#refusal").inner_text()
    viewer.close()
    context, page = _context(chromium, site, "rui")
    page.goto(version)
    page.fill("#note-approve", "reviewed gates and drift")
    page.click("#approve")
    assert "approved" in page.locator("#decision").inner_text()
    assert "production" in page.locator("h1").inner_text()
    shoot(page, shots, "approved")
    context.close()


def test_follow_lineage_from_a_model_to_its_training_data(
    chromium: Any, site: Site, shots: Path
) -> None:
    context, page = _context(chromium, site, "vic")
    page.goto("/models/fraud/versions/1")
    page.click("#lineage-link")
    graph = page.locator("svg#lineage")
    assert graph.locator("g.node.focus").get_attribute("data-node") == "model:fraud/1"
    data = graph.locator("g.node", has=page.locator("text=dataset")).first
    node = data.get_attribute("data-node") or ""
    assert node.startswith("artifact:")
    data.locator("a").click()
    page.wait_for_url(re.compile(r"/lineage\?node=artifact"))
    assert page.locator("svg#lineage g.node.focus").get_attribute("data-node") == node
    shoot(page, shots, "lineage-training-data")
    context.close()


def test_a_monitor_draws_drift_over_time_and_histograms(
    chromium: Any, site: Site, shots: Path
) -> None:
    context, page = _context(chromium, site, "vic")
    page.goto("/monitors")
    page.click("a[href='/monitors/fraud-daily']")
    page.locator("#drift-chart canvas").wait_for()
    assert (
        int(page.locator("#drift-chart").get_attribute("data-drawn") or 0) == 5
    )  # five daily windows
    assert page.locator("#drift-table svg[role=img]").count() >= 5
    drifted = page.locator("#drift-table tbody tr", has=page.locator("td.failed")).all_inner_texts()
    assert any(row.startswith("amount") for row in drifted)
    shoot(page, shots, "monitor-drift")
    context.close()


def test_the_audit_log_verifies_its_chain(chromium: Any, site: Site, shots: Path) -> None:
    context, page = _context(chromium, site, "vic")
    page.goto("/audit")
    page.click("#verify")
    status = page.locator("#chain-status").inner_text()
    assert status.startswith("✔ Chain verified")
    head = page.locator("#head-hash").inner_text()
    verified = httpx.get(
        f"{site.url}/api/v1/audit/verify", headers={"Authorization": f"Bearer {site.tokens['vic']}"}
    ).json()
    assert head == verified["head"] and verified["ok"] is True
    page.fill("#action", "promotion.")
    page.click("form[role=search] button[type=submit]")
    actions = page.locator("#audit-events tbody td:nth-child(4)").all_inner_texts()
    assert actions and all(a.startswith("promotion.") for a in actions)
    shoot(page, shots, "audit")
    context.close()


def test_the_project_page_shows_the_applies_and_a_hand_edit_as_drift(
    chromium: Any, site: Site, shots: Path
) -> None:
    context, page = _context(chromium, site, "vic")
    page.goto("/project")
    # The demo applied its shipyard.yaml twice (the second put a hand edit back); this
    # suite then made vic by hand, outside the spec.
    assert len(page.locator("#apply-history tbody tr").all()) == 2

    def drift_rows() -> dict[str, list[str]]:
        rows = page.locator("#drift-items tbody tr").all()
        return {cells[0]: cells for cells in (r.locator("td").all_inner_texts() for r in rows)}

    assert drift_rows()["RoleBinding/vic"][1:4:2] == ["created", "admin"]
    backend = local_backend(Settings(uri=str(site.home)))
    try:
        with acting_as("rui"):
            backend.spec.edit("Monitor", "fraud-daily", {"window.every": "6h"})
    finally:
        backend.close()
    page.reload()
    monitor = drift_rows()["Monitor/fraud-daily"]
    assert monitor[1] == "changed" and monitor[3] == "rui"
    assert 'window.every: "1d" → "6h"' in monitor[2]
    shoot(page, shots, "project-drift")
    context.close()


def test_an_automl_search_shows_each_trial_and_the_best_so_far(
    chromium: Any, site: Site, shots: Path
) -> None:
    context, page = _context(chromium, site, "vic", bypass_csp=True)
    page.goto(f"/runs/{site.search_run}")
    chart = page.locator("[data-chart=search-trials]")
    chart.locator("canvas").wait_for()
    children = httpx.post(
        f"{site.url}/api/v1/runs/search",
        json={"experiment_ids": ["fraud-training"], "max_results": 1000},
        headers={"Authorization": f"Bearer {site.tokens['vic']}"},
    )
    trials = [r for r in children.json()["runs"] if r.get("parent_id") == site.search_run]
    assert int(chart.get_attribute("data-drawn") or 0) == len(trials) > 1
    leaders = page.locator("#search-leaders tbody tr")
    assert leaders.count() >= 1
    # The leader links to its trial's own run, whose parent is the search.
    leaders.first.locator("a").click()
    assert site.search_run in page.locator("dl.kv").inner_text()
    page.go_back()
    finish(page, context, shots, "automl-search")


def test_edge_shows_a_groups_rollout_and_a_bundles_variants(
    chromium: Any, site: Site, shots: Path
) -> None:
    context, page = _context(chromium, site, "vic", bypass_csp=True)
    page.goto("/edge")
    group = page.locator("#group-porto-terminals")
    assert "8 device(s) reporting" in group.inner_text()
    assert "50% to" in group.inner_text()
    running = group.locator("table.running tbody tr")
    counts = [int(running.nth(i).locator("td.num").inner_text()) for i in range(running.count())]
    assert sum(counts) == 8 and len(counts) == 2  # half on the bundle, half on none yet
    page.locator("#bundles a", has_text=site.bundle).click()
    page.wait_for_url(re.compile(r"/edge/bundles/"))
    rows = page.locator("#variants tbody tr")
    assert rows.count() >= 5  # the native model and every variant tried
    chosen = page.locator("#variants tr.chosen")
    assert "(chosen)" in chosen.inner_text() and "passed" in chosen.inner_text()
    assert "not applicable" in page.locator("#variants").inner_text()
    finish(page, context, shots, "edge-bundle")


def test_every_page_passes_axe_and_stays_under_the_script_budget(
    chromium: Any, site: Site, shots: Path
) -> None:
    # axe is injected as a script, which the pages' CSP forbids: this context bypasses it.
    context, page = _context(chromium, site, "rui", bypass_csp=True)
    problems = []
    scripts: list[int] = []
    page.on(
        "response",
        lambda r: scripts.append(len(r.body())) if r.request.resource_type == "script" else None,
    )
    for name, path in PAGES:
        scripts.clear()
        page.goto(path)
        page.wait_for_load_state("networkidle")
        shoot(page, shots, f"page-{name}")
        assert 0 < sum(scripts) < 500 * 1024, (path, sum(scripts))
        page.add_script_tag(path=str(AXE))
        found = page.evaluate(
            "async () => (await axe.run(document)).violations"
            ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)}))"
        )
        problems += [(path, v) for v in found if v["impact"] in ("serious", "critical")]
    assert not problems, problems
    context.close()


def test_pages_run_under_their_csp_without_errors(chromium: Any, site: Site) -> None:
    context, page = _context(chromium, site, "vic")
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    for _, path in PAGES:
        page.goto(path)
        page.wait_for_load_state("networkidle")
    assert not errors, errors
    context.close()
