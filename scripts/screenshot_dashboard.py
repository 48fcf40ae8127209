"""Take docs/dashboard.png: the dashboard during the bundled sample day.

Runs ``strykr-alerts run`` with the shipped alerts.toml (journal in a temporary
directory, free ports), waits until the sample day has fired a few alerts, and
photographs the page in Debian's headless Chromium.

    .venv/bin/python scripts/screenshot_dashboard.py [--seconds 150]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=150.0, help="how long the day runs first")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "dashboard.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "alerts.toml"
        text = (REPO / "alerts.toml").read_text()
        text = text.replace('journal = "var/alerts.db"', f'journal = "{tmp}/alerts.db"')
        text = text.replace("port = 8765", "port = 0").replace("port = 8080", "port = 0")
        text = text.replace('dir = "articles"', f'dir = "{REPO / "articles"}"')
        config.write_text(text)
        service = subprocess.Popen(
            [str(REPO / ".venv/bin/strykr-alerts"), "run", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert service.stdout is not None
            match = re.search(r"dashboard at (\S+)", service.stdout.readline())
            if match is None:
                print("the service did not start", file=sys.stderr)
                return 1
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(match.group(1))
                time.sleep(args.seconds)
                page.screenshot(path=str(args.out), full_page=False)
                browser.close()
        finally:
            service.terminate()
            service.wait(timeout=10)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
