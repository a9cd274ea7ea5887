"""The web page in a real headless Chromium (Debian's), driven by Playwright, against a real server.

Screenshots land in test-artifacts/screenshots/. Without a Chromium the test is skipped,
unless AESEEK_REQUIRE_BROWSER=1 (CI sets it), which turns the skip into a failure."""

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from app.settings import Settings
from models.data.mnist import MnistSplit
from tests.helpers import live_server, playwright_expect

KEY = "browser-test-key-012345"


SHOTS = Path("test-artifacts/screenshots")


@pytest.fixture(scope="module")
def browser_page(trained_dir: Path, tmp_path_factory: pytest.TempPathFactory, browser) -> Iterator:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("web") / "data"
    shutil.copytree(trained_dir, root, symlinks=True)
    settings = Settings(data_dir=root, mnist_source="idx", bootstrap=False, api_keys=KEY)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with live_server(settings, "/api/v1/ready") as url:
        page = browser.new_page(viewport={"width": 1200, "height": 1600})
        page.goto(url + "/")
        page.wait_for_selector("#model-line:has-text('Active model')")
        yield page
        page.close()


def result_labels(page) -> list[str]:  # type: ignore[no-untyped-def]
    return page.locator("#results li strong").all_inner_texts()


def test_upload_a_digit_and_see_its_neighbours(browser_page, full_mnist: dict[str, MnistSplit], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    image = full_mnist["train"].images[7]
    path = tmp_path / "digit.png"
    Image.fromarray(255 - image).resize((140, 140)).save(path)  # dark ink on white, enlarged
    page.fill("#k", "8")
    page.set_input_files("#file", str(path))
    page.click("#search-upload")
    # Locator waits, not wait_for_function: the page's Content-Security-Policy forbids the eval it uses.
    playwright_expect(page.locator("#results li")).to_have_count(8)
    labels = result_labels(page)
    assert labels[0] == str(int(full_mnist["train"].labels[7]))
    assert page.locator("#seen").get_attribute("src").startswith("data:image/png;base64,")
    assert "neighbours from model" in page.inner_text("#status")
    painted = page.evaluate(
        "(() => { const c = document.getElementById('map'); const d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; let n = 0;"
        " for (let i = 0; i < d.length; i += 4) if (d[i] < 250 || d[i+1] < 250 || d[i+2] < 250) n++; return n; })()"
    )
    assert painted > 500  # gallery points and the query's cross
    page.screenshot(path=str(SHOTS / "search-upload.png"), full_page=True)


def test_draw_a_digit_and_search(browser_page) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    page.click("#clear-pad")
    box = page.locator("#pad").bounding_box()
    x, top = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.2
    page.mouse.move(x, top)
    page.mouse.down()
    for step in range(1, 21):  # a vertical stroke: a "1"
        page.mouse.move(x + step * 0.5, top + step * box["height"] * 0.03)
    page.mouse.up()
    page.fill("#k", "12")
    page.click("#search-drawing")
    playwright_expect(page.locator("#results li")).to_have_count(12)
    labels = result_labels(page)
    assert labels.count("1") >= 6, labels
    page.screenshot(path=str(SHOTS / "search-drawing.png"), full_page=True)


@pytest.mark.slow
def test_start_and_watch_a_tiny_training_job(browser_page) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    page.fill("#api-key", KEY)
    page.select_option("#variant", "conv")
    tiny = {
        "variant": "conv",
        "channels": [8, 16, 32],
        "training": {"epochs": 3, "batch_size": 64, "train_subset": 300},
    }
    page.fill("#config", json.dumps(tiny))
    page.click("#start-training")
    page.wait_for_selector("#jobs li[data-state='running'], #jobs li[data-state='succeeded']", timeout=60_000)
    page.wait_for_selector("#jobs li[data-state='succeeded']", timeout=180_000)
    job = page.locator("#jobs li[data-state='succeeded']").first
    assert "P@10" in job.inner_text() and job.locator("progress").get_attribute("value") == "100"
    page.wait_for_selector("#models tbody tr:nth-child(2)")
    page.screenshot(path=str(SHOTS / "training.png"), full_page=True)


def test_mark_results_and_refine(browser_page) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    page.fill("#k", "8")
    page.click("#search-drawing")
    playwright_expect(page.locator("#results li")).to_have_count(8)
    playwright_expect(page.locator("#refine")).to_be_disabled()
    first, second = page.locator("#results li").nth(0), page.locator("#results li").nth(1)
    first.locator("button.mark").click()  # relevant
    second.locator("button.mark").click()
    second.locator("button.mark").click()  # not relevant
    playwright_expect(first).to_have_class("relevant")
    playwright_expect(second).to_have_class("not-relevant")
    refused = second.locator("img").get_attribute("alt")
    page.click("#refine")
    playwright_expect(page.locator("#status")).to_contain_text("after your marks")
    playwright_expect(page.locator("#results li")).to_have_count(8)
    assert refused not in [image.get_attribute("alt") for image in page.locator("#results li img").all()]
