"""Headless Debian Chromium driven by Playwright, with every non-local request blocked.

Shared by the browser tests (slides, JupyterLab). Never `playwright install`: the browser is
Debian's ``chromium`` package (``.ci/run`` installs it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


def is_local(url: str) -> bool:
    """file:, data:, blob:, about: URLs and http(s)/ws(s) to this machine."""
    parts = urlsplit(url)
    if parts.scheme in ("file", "data", "blob", "about", "chrome-error"):
        return True
    return parts.hostname in LOCAL_HOSTS


@dataclass
class Offline:
    """What a page tried: remote requests (aborted), failed requests, JavaScript errors."""

    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@contextlib.contextmanager
def offline_page(viewport=(1280, 800)) -> Iterator[tuple[object, Offline]]:
    """A fresh Chromium page whose requests to anything but this machine are aborted."""
    from playwright.sync_api import sync_playwright

    log = Offline()

    def route(r):
        if is_local(r.request.url):
            r.continue_()
        else:
            log.blocked.append(r.request.url)
            r.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            context = browser.new_context(
                viewport={"width": viewport[0], "height": viewport[1]}, service_workers="block"
            )
            context.route("**/*", route)
            page = context.new_page()
            page.on("requestfailed", lambda r: log.failed.append(f"{r.url} {r.failure}"))
            page.on("pageerror", lambda e: log.errors.append(str(e)))
            yield page, log
        finally:
            browser.close()
