"""The console in real headless Chromium against a live control plane and worker: it loads,
an app goes from starting to running, a new log line shows within 2 s, a chart moves, the
attestation badge tells the truth. Screenshots are kept under build/screenshots/."""

from __future__ import annotations

import time

import httpx
import pytest
from console_stack import ConsoleStack, chatty_compose, shoot

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_network_page_loads_live(page, stack: ConsoleStack) -> None:
    page.goto(stack.url + "/console/")
    page.wait_for_selector("[data-stat='Workers online']")
    assert page.title() == "veil console"
    assert page.inner_text("[data-stat='Workers online']") == "1"
    assert "CPU (TDX)" in page.inner_text("#net-models")
    assert page.get_attribute("#conn", "data-state") == "live"
    shoot(page, "network")
    assert page.console_errors == []


def test_sign_in_refuses_a_bad_key_in_one_line(browser, stack: ConsoleStack) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(stack.url + "/console/#/apps")
        page.fill("#key", "veil_not-a-key")
        page.click("button[type=submit]")
        page.wait_for_selector("#signin-error .error-box")
        assert "unknown API key" in page.inner_text("#signin-error")
        shoot(page, "sign-in-error")
    finally:
        context.close()


def test_empty_apps_page_says_how_to_deploy(page, stack: ConsoleStack) -> None:
    page.goto(stack.url + "/console/#/apps")
    page.wait_for_selector(".empty-state")
    assert "veil cloud deploy" in page.inner_text(".empty-state")


def test_app_starts_runs_logs_charts_and_badge(page, stack: ConsoleStack) -> None:
    app = stack.deploy("inference-api", chatty_compose(boot_seconds=3.0))
    page.goto(f"{stack.url}/console/#/apps/{app['app_id']}")
    page.wait_for_selector("#app-status .pill")
    seen = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # watch the pill change live, without reloads
        seen.add(page.get_attribute("#app-status .pill", "data-status"))
        if "running" in seen:
            break
        if "starting" in seen and "shot" not in seen:
            shoot(page, "app-starting")
            seen.add("shot")
        time.sleep(0.05)
    assert "starting" in seen and "running" in seen, seen
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1  # no reload

    # a new log line, end to end (app -> worker -> control plane -> browser), within 2 s
    page.wait_for_selector("#logs .ln")
    port = stack.app(app["app_id"])["ports"]["8080"]
    marker = f"order-{time.time_ns()} confirmed"
    sent = time.monotonic()
    httpx.get(f"http://{port}/say", params={"text": marker}, timeout=5)
    page.wait_for_function(
        "text => document.getElementById('logs').innerText.includes(text)", arg=marker, timeout=2000
    )
    assert time.monotonic() - sent < 2.0

    # the CPU chart moves: more points arrive and are drawn
    page.wait_for_function("Number(document.getElementById('cpu-chart').dataset.points) > 0")
    before = int(page.get_attribute("#cpu-chart", "data-points"))
    page.wait_for_function(
        f"Number(document.getElementById('cpu-chart').dataset.points) > {before + 2}",
        timeout=10_000,
    )
    assert int(page.get_attribute("#mem-chart", "data-points")) > 0
    assert page.inner_text("#mem-now").endswith("MiB")

    # the badge: a simulated worker's quote is shown as simulated and not verified, with the
    # compose hash this customer deployed and the measured one matching it
    page.wait_for_selector("#att-badge[data-state='unverified']", timeout=15_000)
    assert page.get_attribute("#att-badge", "data-simulated") == "1"
    assert "Simulated TEE" in page.inner_text("#att-badge")
    assert page.get_attribute("#att-compose", "title") == app["compose_hash"]
    assert "matches" in page.inner_text(".facts")
    assert "SIMULATED" in page.inner_text(".facts")
    time.sleep(1.5)  # let the charts gather a few more samples for the screenshot
    shoot(page, "app-running")
    page.click(".crumb")
    page.wait_for_selector(f"[data-app='{app['app_id']}'] .pill[data-status='running']")
    shoot(page, "apps")
    assert page.console_errors == []


def test_unknown_app_shows_not_found(page, stack: ConsoleStack) -> None:
    page.goto(f"{stack.url}/console/#/apps/0x{'12' * 20}")
    page.wait_for_selector(".empty-state")
    assert "App not found" in page.inner_text(".empty-state")
