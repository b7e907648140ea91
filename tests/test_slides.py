"""Slides: reveal.js decks of the lessons, built offline-ready and checked in headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
from _browser import offline_page

from course_utils import slides

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def decks(tmp_path_factory):
    """The committed lessons (no outputs) built into a fresh folder: {stem: deck path}."""
    out = tmp_path_factory.mktemp("slides")
    written = slides.build_all(NOTEBOOKS, out)
    return {p.name.removesuffix(".slides.html"): p for p in written}


def test_remote_references_finds_what_a_browser_would_load():
    html = """<html><head>
    <script src="https://cdn.example/require.js"></script>
    <script src="vendor/local.js"></script>
    <link rel="stylesheet" href="//fonts.example/font.css">
    <link rel="canonical" href="https://example.org/page">
    <style>@import url(https://fonts.example/x.css); .a {background: url('img.png')}</style>
    <script>require({waitSeconds: 15}, ["https://unpkg.com/reveal.js/dist/reveal.js",
        "reveal.js/plugin/notes/notes.js"], function (R) {});</script>
    </head><body><a href="https://paper.example/">a paper to read</a>
    <img src="data:image/png;base64,AAAA"></body></html>"""
    assert slides.remote_references(html) == [
        "//fonts.example/font.css",
        "https://cdn.example/require.js",
        "https://fonts.example/x.css",
        "https://unpkg.com/reveal.js/dist/reveal.js",
    ]


def test_nbconvert_defaults_would_load_from_cdns():
    """The check is not vacuous: nbconvert's own exporter references CDNs."""
    from nbconvert import SlidesExporter

    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    body, _ = SlidesExporter().from_notebook_node(nb)
    assert any("reveal.js" in u for u in slides.remote_references(body))


def test_vendored_reveal_is_the_version_nbconvert_templates_expect():
    from nbconvert import SlidesExporter

    template = Path(SlidesExporter().template.filename).read_text()
    assert f"reveal.js@{slides.REVEAL_VERSION}" in template
    header = (slides.ASSETS_DIR / "reveal.js" / "dist" / "reveal.js").read_text()[:200]
    assert f"reveal.js {slides.REVEAL_VERSION}" in header


def test_every_lesson_has_a_deck_with_its_slides(decks):
    assert sorted(decks) == [p.stem for p in NOTEBOOKS]
    for stem, deck in decks.items():
        html = deck.read_text()
        nb = nbformat.read(REPO / "notebooks" / f"{stem}.ipynb", as_version=4)
        starts = sum(c.metadata.get("slideshow", {}).get("slide_type") == "slide"
                     for c in nb.cells)
        assert starts >= 1
        assert html.count('<section') >= starts, f"{deck.name}: fewer sections than slides"


def test_decks_load_nothing_remote_and_every_local_asset_exists(decks):
    for deck in decks.values():
        html = deck.read_text()
        assert slides.remote_references(html) == [], deck.name
        local = re.findall(r'(?:src|href)="([^"#:]+?\.(?:js|css))(?:\?[^"]*)?"', html)
        local += re.findall(r'"([^"\s:]+/dist/reveal\.js|[^"\s:]+/notes\.js)"', html)
        assert local, f"{deck.name}: no local script found, the pattern is stale"
        for rel in local:
            assert (deck.parent / unquote(urlsplit(rel).path)).is_file(), f"{deck.name}: {rel}"


def test_html_export_of_a_notebook_loads_nothing_remote():
    nb = nbformat.read(NOTEBOOKS[-1], as_version=4)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    html = slides.export(nb, "html")
    assert slides.remote_references(html) == []
    assert "MathJax.js" in html and "unpkg.com" not in html


def test_html_export_typesets_math_offline_in_chromium(decks, tmp_path):
    """What ``make course`` writes to build/html: lab HTML with the vendored MathJax."""
    stem = _deck_with_math(decks)
    nb = nbformat.read(REPO / "notebooks" / f"{stem}.ipynb", as_version=4)
    page_path = slides.install_assets(tmp_path, ("vendor",)) / f"{stem}.html"
    page_path.write_text(slides.export(nb, "html"))
    with offline_page() as (page, log):
        page.goto(page_path.as_uri())
        page.wait_for_function(
            "document.querySelectorAll('.MathJax_CHTML, .MathJax_Display').length > 0",
            timeout=30_000,
        )
    assert log.blocked == [] and log.failed == [] and log.errors == [], log


def _deck_with_math(decks):
    """A deck whose notebook has display math: 01 when there, else the first with ``$$``."""
    for stem in sorted(decks, key=lambda s: s != "01_cnn_recap"):
        if "$$" in (REPO / "notebooks" / f"{stem}.ipynb").read_text():
            return stem
    pytest.fail("no lesson with display math to check MathJax on")


# reveal.js is loaded through require.js (AMD), so it is not a global: look it up there.
REVEAL = """() => { const d = require.s.contexts._.defined;
  const k = Object.keys(d).find(k => k.endsWith('dist/reveal.js')); return d[k]; }"""


def test_a_deck_renders_offline_in_headless_chromium(decks):
    stem = _deck_with_math(decks)
    nb = nbformat.read(REPO / "notebooks" / f"{stem}.ipynb", as_version=4)
    title = nb.cells[0].source.splitlines()[0].lstrip("# ").strip()
    with offline_page() as (page, log):
        page.goto(decks[stem].as_uri())
        page.wait_for_selector(".reveal.ready", timeout=30_000)
        page.wait_for_function(f"({REVEAL})() && ({REVEAL})().isReady()", timeout=30_000)
        total = page.evaluate(f"({REVEAL})().getTotalSlides()")
        assert total > 1
        first = page.inner_text(".slides > section.present")
        assert title.lower() in first.lower()  # the theme upper-cases headings
        assert page.evaluate(f"({REVEAL})().getIndices().h") == 0
        page.keyboard.press("ArrowRight")
        page.wait_for_function(f"({REVEAL})().getIndices().h === 1", timeout=10_000)
        second = page.inner_text(".slides > section.present")
        assert second.strip() and second != first
        # The white theme's font and MathJax come from the vendored copies.
        assert page.evaluate("document.fonts.check('16px \"Source Sans Pro\"')")
        page.wait_for_function(
            "document.querySelectorAll('.MathJax_CHTML, .MathJax_Display').length > 0",
            timeout=30_000,
        )
    assert log.blocked == [], f"the deck tried the network: {log.blocked}"
    assert log.failed == [], f"assets failed to load: {log.failed}"
    assert log.errors == [], f"JavaScript errors: {log.errors}"
