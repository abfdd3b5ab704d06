"""The leaderboard in a real browser: Debian's chromium driven by playwright, from file://, fully offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from op4ksr_bench.report.site import build_site

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
    "--no-first-run", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = pytest.mark.browser


@pytest.fixture
def browser_page(tmp_path):
    """A fresh chromium profile; yields ``(page, problems, requests)`` where problems collects console errors."""
    if not CHROMIUM.is_file():
        pytest.fail("Debian's chromium is missing at /usr/bin/chromium; run `make browser-deps`")
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )  # fmt: skip
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://") else (
            requests.append(route.request.url), route.abort()))  # fmt: skip
        context.set_default_timeout(60_000)  # a loaded CI machine can be slow to decode the crops
        page = context.new_page()
        page.on(
            "console", lambda message: problems.append(message.text) if message.type in ("error", "warning") else None
        )
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
        try:
            yield page, problems, requests
        finally:
            context.close()


def _poll(page, expression: str, seconds: float = 60.0) -> None:
    """Wait until ``expression`` is true. ``page.wait_for_function`` evaluates its predicate with ``eval`` inside the
    page, which the site's Content-Security-Policy (no 'unsafe-eval') forbids, so poll from outside instead."""
    import time

    deadline = time.monotonic() + seconds
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {expression}")
        page.wait_for_timeout(100)


PENDING_IMAGES = """(() => {
    const pending = Array.from(document.images).filter(image => !image.complete);
    if (pending.length) { pending[0].scrollIntoView(); }
    return pending.length === 0;
})()"""
"""True once every image settled; otherwise scrolls the first unsettled one into view (thumbnails load lazily, only
near the viewport, so a long comparison page needs each of them visited)."""


def _all_images_loaded(page) -> bool:
    """Visit every lazily loaded image until all settled, and check none is broken."""
    _poll(page, PENDING_IMAGES, seconds=120.0)
    page.evaluate("window.scrollTo(0, 0)")
    return page.evaluate(
        "document.images.length > 0 && Array.from(document.images).every(image => image.naturalWidth > 0)"
    )


def test_leaderboard_in_chromium(compared, make_run, tmp_path, browser_page):
    page, problems, requests = browser_page
    results_folder, data, _, _ = compared
    make_run(results_folder, method="hostile", display_name='<script>document.title="owned"</script>',
             values={"img-a": {"psnr": 10.0}}, metrics=("psnr",), suite_hash=_suite_hash(results_folder))  # fmt: skip
    out = tmp_path / "site"
    build_site(results_folder, out, data, crop_size=64)

    page.goto((out / "index.html").as_uri())
    page.wait_for_load_state("load")
    assert page.title() == "Results · op4ksr-bench leaderboard"  # the hostile name did not run
    assert _all_images_loaded(page)
    header = page.locator('th[data-metric="psnr"]')
    methods = page.locator("table.board tbody tr td.method a")
    before = methods.all_inner_texts()
    header.click()
    assert header.get_attribute("aria-sort") == "descending"  # higher is better: best first
    after = methods.all_inner_texts()
    # ranked rows (both images scored) first, then the partial ones (op4ksr failed img-b; hostile scored one)
    hostile = '<script>document.title="owned"</script>'
    assert after != before and after == ["lanczos", "bicubic", "op4ksr", hostile]
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert methods.all_inner_texts() == ["bicubic", "lanczos", hostile, "op4ksr"]
    page.keyboard.press("Tab")  # headers are reachable from the keyboard too
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "leaderboard-index.png"), full_page=True)

    methods.first.click()  # provenance is one click away
    page.wait_for_load_state("load")
    assert "Options in effect" in page.content() and "git_sha" in page.content()

    page.goto((out / "compare" / "tiny-syn-v1" / "img-a.html").as_uri())
    page.wait_for_load_state("load")
    assert _all_images_loaded(page)
    slider = page.locator(".slider").first
    assert slider.get_attribute("data-position") == "50"
    frame = slider.locator(".slider-frame")
    frame.scroll_into_view_if_needed()
    box = frame.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] / 2)
    page.mouse.up()
    assert slider.get_attribute("data-position") == "20"
    assert "inset(0px 80% 0px 0px)" in slider.locator("img.before").evaluate(
        "image => getComputedStyle(image).clipPath"
    )
    slider.locator("input[type=range]").fill("70")
    assert slider.get_attribute("data-position") == "70"
    slider.locator("select.before").select_option(label="HR (ground truth)")
    _poll(page, "document.querySelector('.slider img.before').src.endsWith('/hr.png')")
    assert _all_images_loaded(page)
    page.screenshot(path=str(ARTIFACTS / "leaderboard-compare.png"), full_page=True)

    assert problems == [], problems
    assert requests == [], f"the page tried to reach the network: {requests}"


def _suite_hash(results: Path) -> str:
    import json

    run = next(results.rglob("run.json"))
    return json.loads(run.read_text(encoding="utf-8"))["suite"]["hash"]


def test_artifacts_folder_is_ignored_by_git():
    ignore = (Path(__file__).resolve().parents[2] / ".gitignore").read_text(encoding="utf-8")
    assert "/test-artifacts/" in ignore.split()


def test_published_leaderboard_in_chromium(browser_page):
    """The committed site opens offline: no console errors, every image and comparison page loads."""
    page, problems, requests = browser_page
    leaderboard = Path(__file__).resolve().parents[2] / "leaderboard"
    if not (leaderboard / "index.html").is_file():
        pytest.fail("leaderboard/ holds no published leaderboard; run scripts/publish-leaderboard.sh")
    page.goto((leaderboard / "index.html").as_uri())
    page.wait_for_load_state("load")
    assert _all_images_loaded(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "published-index.png"), full_page=True)
    first = page.locator(".thumbs a").first
    first.click()
    page.wait_for_load_state("load")
    assert "/compare/" in page.url and _all_images_loaded(page)
    page.screenshot(path=str(ARTIFACTS / "published-compare.png"), full_page=True)
    assert problems == [], problems
    assert requests == [], f"the page tried to reach the network: {requests}"
