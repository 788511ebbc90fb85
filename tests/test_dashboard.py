"""The dashboard in a real browser (Debian's Chromium driven by Playwright), on a real run.

A small simulated federation runs first (`fl-sim run`, or set FEDKG_TEST_RESULTS to a results
directory made earlier), `fl-server dashboard` imports it and serves it as a user would, and
the test checks that the charts and tables show that run's numbers. The run page is saved as
docs/img/dashboard.png.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from fl_server.db import Database
from fl_server.db.institutions import authenticate

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "img" / "dashboard.png"
BIN = Path(sys.executable).parent


def _simulate(out: Path) -> None:
    given = os.environ.get("FEDKG_TEST_RESULTS")
    if given:
        for metrics in [Path(given) / "metrics.json", *Path(given).glob("*/metrics.json")]:
            if metrics.is_file():
                target = out / (metrics.parent.name or "run")
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(metrics, target / "metrics.json")
                for card in metrics.parent.glob("data/*.card.yaml"):
                    (target / "data").mkdir(exist_ok=True)
                    shutil.copy(card, target / "data" / card.name)
        return
    subprocess.run(
        [
            BIN / "fl-sim",
            "run",
            "banks",
            "--clients",
            "3",
            "--rounds",
            "3",
            "--no-he",
            "--out",
            out / "banks",
        ],
        check=True,
        timeout=900,
        capture_output=True,
    )


def _fmt_bytes(value: float) -> str:
    """As the dashboard's fmt.bytes writes it."""
    units, x, i = ["B", "kB", "MB", "GB", "TB"], float(value), 0
    while abs(x) >= 1000 and i < len(units) - 1:
        x, i = x / 1000, i + 1
    return f"{x:.0f} B" if i == 0 else f"{x:.1f} {units[i]}"


@dataclass
class Served:
    url: str
    token: str
    results: Path
    metrics: dict[str, Any]
    process: subprocess.Popen[str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if not CHROMIUM.exists():
        pytest.fail(
            "Chromium is missing; run scripts/ci_services.sh (it installs Debian's chromium)"
        )
    results = tmp_path_factory.mktemp("results")
    _simulate(results)
    metrics_file = next(results.glob("*/metrics.json"))
    port = _free_port()
    proc = subprocess.Popen(
        [BIN / "fl-server", "dashboard", str(results), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    url = ""
    deadline = time.monotonic() + 120
    lines = []
    while not url and time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if found := re.search(r"Dashboard: (http://\S+)", line):
            url = found.group(1)
        if proc.poll() is not None:
            break
    assert url, "".join(lines)
    base = url.split("#")[0].replace("localhost", "127.0.0.1")
    while time.monotonic() < deadline:
        try:
            if httpx.get(base.replace("/dashboard/", "/healthz"), timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    served = Served(
        url, url.split("#token=")[1], results, json.loads(metrics_file.read_text()), proc
    )
    yield served
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, device_scale_factor=1)
    pg = context.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))

    def console(msg: Any) -> None:
        # A refused key shows up as a failed request (401); anything else is a problem.
        if msg.type == "error" and "status of 401" not in msg.text:
            problems.append(msg.text)

    pg.on("console", console)
    yield pg
    context.close()
    assert problems == [], problems  # no script errors, no CSP violations


def _values(page: Any, selector: str) -> list[tuple[int, float]]:
    pairs = page.eval_on_selector_all(
        selector, "els => els.map(e => [Number(e.dataset.x), Number(e.dataset.value)])"
    )
    return [(int(x), float(v)) for x, v in pairs]


def test_runs_page_lists_the_simulated_run(served: Served, page: Any) -> None:
    page.goto(served.url)
    page.wait_for_selector('body[data-ready="#/runs"]')
    assert "#token" not in page.url  # the key leaves the address bar at once
    run_id = served.metrics["config"]["run_id"]
    row = page.locator(f'#runs-table tr[data-run="{run_id}"]')
    last = served.metrics["rounds"][-1]["metrics"]
    assert row.locator('td[data-metric="accuracy"]').inner_text() == f"{last['accuracy']:.3f}"
    assert row.locator("[data-status]").inner_text() == "finished"
    rounds = len(served.metrics["rounds"])
    assert f"{rounds} / {rounds}" in row.inner_text()
    assert page.locator("#whoami").inner_text() == "admin"


def test_run_page_shows_the_runs_real_numbers(served: Served, page: Any) -> None:
    m = served.metrics
    run_id = m["config"]["run_id"]
    page.goto(served.url)
    page.wait_for_selector('body[data-ready="#/runs"]')
    page.click(f'#runs-table tr[data-run="{run_id}"] a')
    page.wait_for_selector(f'body[data-ready="#/runs/{run_id}"]')

    assert page.locator("#tile-accuracy .value").inner_text() == f"{m['final']['accuracy']:.3f}"
    assert f"{m['centralized']['accuracy']:.3f}" in page.locator("#tile-accuracy").inner_text()
    rounds = m["rounds"]
    total = sum(r["bytes_up"] + r["bytes_down"] for r in rounds)
    assert page.locator("#tile-bytes .value").inner_text() == _fmt_bytes(total)

    for r in rounds:
        row = page.locator(f'#rounds-table tr[data-round="{r["round"]}"]')
        assert (
            row.locator('[data-col="accuracy"]').inner_text() == f"{r['metrics']['accuracy']:.3f}"
        )
        assert row.locator('[data-col="loss"]').inner_text() == f"{r['metrics']['loss']:.4f}"
        assert row.locator('[data-col="clients"] .chip').all_inner_texts() == sorted(r["clients"])
        assert row.locator('[data-col="bytes_up"]').inner_text() == _fmt_bytes(r["bytes_up"])
        assert row.locator('[data-col="bytes_down"]').inner_text() == _fmt_bytes(r["bytes_down"])

    numbers = [r["round"] for r in rounds]
    accuracy = _values(page, "#chart-accuracy circle[data-series='accuracy']")
    assert accuracy == [
        (n, pytest.approx(r["metrics"]["accuracy"])) for n, r in zip(numbers, rounds, strict=True)
    ]
    loss = _values(page, "#chart-loss circle[data-series='evaluation loss']")
    assert [v for _, v in loss] == pytest.approx([r["metrics"]["loss"] for r in rounds])

    institutions = sorted({who for r in rounds for who in r["epsilon"]})
    assert institutions, "the simulated run reported no epsilon"
    for who in institutions:
        drawn = _values(page, f"#chart-epsilon circle[data-series='{who}']")
        expected = [(r["round"], r["epsilon"][who]) for r in rounds if who in r["epsilon"]]
        assert drawn == [(n, pytest.approx(v)) for n, v in expected]
    assert page.locator("#chart-epsilon [data-legend]").all_inner_texts() == institutions

    contributed = _values(page, "#chart-participants rect[data-series='contributed']")
    rejected = _values(page, "#chart-participants rect[data-series='rejected']")
    assert [v for _, v in contributed] == [len(r["clients"]) for r in rounds]
    assert [v for _, v in rejected] == [len(r["rejected"]) for r in rounds]
    up = _values(page, "#chart-bytes rect[data-series='up (to coordinator)']")
    assert [v for _, v in up] == [r["bytes_up"] for r in rounds]

    for inst in m["institutions"]:
        row = page.locator(f'#participants-table tr[data-institution="{inst["name"]}"]')
        assert inst["dataset"] in row.inner_text() and str(inst["records"]) in row.inner_text()

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 20_000


def test_graph_page_draws_the_institutions_cards(served: Served, page: Any) -> None:
    cards = sorted(served.results.glob("*/data/*.card.yaml"))
    if not cards:
        pytest.skip("these results hold no data set cards (written by fl-sim since the KG work)")
    expected = sorted(p.name.removesuffix(".card.yaml") for p in cards)
    page.goto(served.url)
    page.wait_for_selector('body[data-ready="#/runs"]')
    page.click('#nav a[data-nav="graph"]')
    page.wait_for_selector('body[data-ready="#/graph"]')
    drawn = page.eval_on_selector_all(
        "#chart-graph g[data-kind='institution'] text", "els => els.map(e => e.textContent)"
    )
    assert sorted(drawn) == expected
    datasets = page.locator("#chart-graph g[data-kind='dataset']").count()
    assert datasets == len(cards)
    assert page.locator("#chart-graph g[data-kind='concept']").count() > 0
    assert page.locator("#chart-graph path.edge").count() > datasets


def test_audit_page_shows_the_import_and_verifies_the_chain(served: Served, page: Any) -> None:
    page.goto(served.url.split("#")[0] + "#token=" + served.token)
    page.wait_for_selector('body[data-ready="#/runs"]')
    page.click('#nav a[data-nav="audit"]')
    page.wait_for_selector('body[data-ready="#/audit"]')
    actions = page.locator("#audit-table .chip").all_inner_texts()
    assert actions.count("round.recorded") == len(served.metrics["rounds"])
    assert "run.finished" in actions
    page.click("#verify-button")
    page.wait_for_selector("#verify-result .ok-box")
    assert "Chain intact" in page.locator("#verify-result").inner_text()


def test_a_wrong_key_is_refused(served: Served, page: Any) -> None:
    page.goto(served.url.split("#")[0] + "#token=fedkg_0123456789abcdef_not-the-key")
    page.wait_for_selector(".signin .error")
    assert "not accepted" in page.locator(".signin .error").inner_text()
    page.fill("#api-key", served.token)
    page.click(".signin button")
    page.wait_for_selector('body[data-ready="#/runs"]')
    assert page.locator("#runs-table tbody tr").count() == 1


def test_the_session_key_dies_with_the_command(served: Served) -> None:
    served.process.send_signal(signal.SIGINT)
    served.process.wait(timeout=60)
    db = Database(f"sqlite:///{served.results / 'coordinator.db'}")
    with db.read() as s:
        assert authenticate(s, served.token) is None
    db.dispose()
