"""Screenshot the web page searching with the active model: `python scripts/readme_screenshot.py`.

Serves ./var (or AESEEK_DATA_DIR) on a free port, uploads the first MNIST test digit drawn as
dark ink on paper, and writes docs/images/web-page.png. Needs Debian's chromium and playwright.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.settings import Settings
from models.data.mnist import load_mnist
from tests.helpers import live_server

OUT = Path("docs/images/web-page.png")


def main() -> None:
    """Serve, search, screenshot."""
    data_dir = Path(os.environ.get("AESEEK_DATA_DIR", "var"))
    settings = Settings(data_dir=data_dir, bootstrap=False, jobs_enabled=False)
    digit = load_mnist("test", data_dir).images[0]
    with tempfile.TemporaryDirectory() as scratch:
        query = Path(scratch) / "digit.png"
        Image.fromarray(255 - digit).resize((200, 200)).save(query)
        with live_server(settings, "/api/v1/ready") as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1100, "height": 1300})
            page.goto(url + "/")
            page.wait_for_selector("#model-line:has-text('Active model')")
            page.fill("#k", "12")
            page.set_input_files("#file", str(query))
            page.click("#search-upload")
            page.wait_for_function("document.querySelectorAll('#results li').length === 12")
            OUT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(OUT), clip={"x": 0, "y": 0, "width": 1100, "height": 1300})
            browser.close()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
