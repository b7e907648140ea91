"""Reveal.js slides of the lessons that open offline, and offline HTML for executed notebooks.

The notebooks carry ``slideshow`` cell metadata; nbconvert's ``SlidesExporter`` turns them into
reveal.js decks. By default nbconvert loads reveal.js, require.js, jQuery and MathJax from CDNs;
here every one of them points at the copies vendored in the repository's ``slides/`` folder
(``slides/reveal.js/``, ``slides/vendor/``; see ``slides/README.md``), copied next to the decks,
so a built deck opens from disk without a network.

Command line: ``python -m course_utils slides [--out slides] [notebooks ...]`` (``make slides``).
"""

from __future__ import annotations

import functools
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

#: The vendored assets live in the repository's ``slides/`` folder (an editable install).
ASSETS_DIR = Path(__file__).resolve().parent.parent / "slides"
ASSET_FOLDERS = ("reveal.js", "vendor")
#: The version nbconvert's reveal template is written for (``unpkg.com/reveal.js@4.0.2``).
REVEAL_VERSION = "4.0.2"
MATHJAX_CONFIG = "TeX-AMS_CHTML-full,Safe"  # nbconvert's default configuration string


def asset_urls(prefix: str = "") -> dict[str, str]:
    """Exporter options that load every script and style sheet from local, relative paths.

    Parameters
    ----------
    prefix : str
        Prepended to every path: ``""`` when the assets sit next to the HTML file,
        ``"../slides/"`` when they sit in a sibling folder.

    Examples
    --------
    >>> asset_urls()["reveal_url_prefix"]
    'reveal.js'
    """
    return {
        "reveal_url_prefix": f"{prefix}reveal.js",
        "require_js_url": f"{prefix}vendor/require.js",
        "jquery_url": f"{prefix}vendor/jquery.min.js",
        "mathjax_url": f"{prefix}vendor/mathjax/MathJax.js?config={MATHJAX_CONFIG}",
    }


def install_assets(out_dir: str | Path, folders: tuple[str, ...] = ASSET_FOLDERS) -> Path:
    """Copy the vendored reveal.js, require.js, jQuery and MathJax into ``out_dir``.

    ``folders``: which of ``slides/reveal.js`` and ``slides/vendor`` (plain HTML needs only
    ``vendor``).

    Nothing is copied when ``out_dir`` is the repository's ``slides/`` folder itself.

    Examples
    --------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> out = install_assets(tmp.name, folders=("vendor",))
    >>> sorted(p.name for p in out.iterdir())
    ['vendor']
    >>> tmp.cleanup()
    """
    out_dir = Path(out_dir)
    missing = [f for f in ASSET_FOLDERS if not (ASSETS_DIR / f).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"The vendored slide assets {missing} are missing from {ASSETS_DIR}: run "
            "`bash slides/vendor.sh` (needs npm) or use an editable install of the repository."
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    if out_dir.resolve() != ASSETS_DIR:
        for folder in folders:
            shutil.copytree(ASSETS_DIR / folder, out_dir / folder, dirs_exist_ok=True)
    return out_dir


# Both templates load mermaid from a CDN for diagrams; the course has none, so the block goes.
_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{% block html_head_js_mermaidjs %}{% endblock html_head_js_mermaidjs %}
"""


@functools.lru_cache(maxsize=8)
def exporter(kind: str = "slides", prefix: str = ""):
    """An nbconvert exporter (``"slides"``: reveal.js, ``"html"``: lab) with local assets.

    Reveal.js, require.js, jQuery and MathJax load from ``prefix`` + the vendored folders, the
    CDN import of mermaid (diagrams, unused in the course) is removed. Notebooks that stored
    widget state would load the widget renderer from unpkg.com: :func:`export` drops that state.

    One exporter per ``(kind, prefix)`` is made and reused (templates compile once).

    Examples
    --------
    >>> exporter("slides").reveal_url_prefix
    'reveal.js'
    """
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter, SlidesExporter

    if kind not in ("slides", "html"):
        raise ValueError(f"kind must be 'slides' or 'html', got {kind!r}.")
    urls = asset_urls(prefix)
    options = {"extra_loaders": [DictLoader({"offline.html.j2": _OFFLINE_TEMPLATE})],
               "template_file": "offline.html.j2"}
    if kind == "html":
        urls.pop("reveal_url_prefix")
        return HTMLExporter(**urls, **options)
    # white: the theme whose fonts are vendored (nbconvert's default, simple, uses Google Fonts)
    return SlidesExporter(reveal_theme="white", reveal_scroll=True, **urls, **options)


def export(nb, kind: str = "slides", prefix: str = "") -> str:
    """Export a notebook node to an HTML string that needs no network (see :func:`exporter`).

    Examples
    --------
    >>> import nbformat
    >>> html = export(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Hi")]))
    >>> remote_references(html), "reveal.js/dist/reveal.js" in html
    ([], True)
    """
    nb = nb.copy()
    nb.metadata = {k: v for k, v in nb.metadata.items() if k != "widgets"}
    body, _ = exporter(kind, prefix).from_notebook_node(nb)
    problems = remote_references(body)
    if problems:
        raise RuntimeError(f"The exported {kind} still load from the network: {problems}")
    return body


class _RefParser(HTMLParser):
    """Collects the URLs a browser loads: src/href of scripts, style sheets, images, frames."""

    LOADING = {"script": "src", "img": "src", "iframe": "src", "embed": "src",
               "source": "src", "audio": "src", "video": "src", "object": "data", "link": "href"}

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self._in: str | None = None
        self.inline: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = self.LOADING.get(tag)
        if name and attrs.get(name):
            rel = (attrs.get("rel") or "").lower()
            if tag != "link" or rel in ("stylesheet", "preload", "modulepreload", "icon"):
                self.urls.append(attrs[name])
        self._in = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in:
            self.inline.append(data)


_REMOTE = re.compile(r"^(https?:)?//", re.I)
# Inline code that loads something right away: require([...]) lists, CSS @import and url().
_INLINE = re.compile(
    r"""require\s*\(\s*\{[^}]*\}\s*,\s*\[(?P<req>[^\]]*)\]|@import\s+(url\()?['"]?(?P<imp>[^'")\s;]+)|url\(\s*['"]?(?P<url>(?:https?:)?//[^'")\s]+)""",
    re.S,
)


def remote_references(html: str) -> list[str]:
    """The remote (http, https, protocol-relative) URLs a page loads to render.

    Looks at ``src``/``href`` of scripts, style sheets, images and frames, at the module list
    of inline ``require([...])`` calls and at CSS ``@import``/``url()``. URLs that only appear
    in text (links to read, conditional imports such as mermaid when no diagram is present)
    are not counted.

    Examples
    --------
    >>> remote_references('<script src="https://cdn.x/a.js"></script><img src="a.png">')
    ['https://cdn.x/a.js']
    """
    parser = _RefParser()
    parser.feed(html)
    urls = list(parser.urls)
    for code in parser.inline:
        for m in _INLINE.finditer(code):
            if m.group("req"):
                urls += re.findall(r"""["']([^"']+)["']""", m.group("req"))
            urls += [u for u in (m.group("imp"), m.group("url")) if u]
    return sorted({u for u in urls if _REMOTE.match(u.strip())})


def source_for(notebook: str | Path, executed_dir: str | Path | None = "build/notebooks") -> Path:
    """The executed copy of ``notebook`` (written by ``make course``) when it is newer, else it.

    Examples
    --------
    >>> source_for("notebooks/01_cnn_recap.ipynb", executed_dir=None)
    PosixPath('notebooks/01_cnn_recap.ipynb')
    """
    notebook = Path(notebook)
    if executed_dir is not None:
        executed = Path(executed_dir) / notebook.name
        if executed.is_file() and executed.stat().st_mtime >= notebook.stat().st_mtime:
            return executed
    return notebook


def _existing(notebooks) -> list[Path]:
    """``notebooks`` as paths; a missing one is a FileNotFoundError naming it."""
    paths = [Path(p) for p in notebooks]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"Notebooks not found: {missing}; pass existing .ipynb paths.")
    return paths


def lessons(notebooks=None) -> list[Path]:
    """The notebooks to build: ``notebooks`` (each must exist) or, when none are given, every
    lesson ``notebooks/NN_*.ipynb`` under the current folder (there must be at least one).

    Raises
    ------
    FileNotFoundError
        Naming the missing notebooks, or the folder that holds no lesson.

    Examples
    --------
    >>> lesson = ASSETS_DIR.parent / "notebooks" / "01_cnn_recap.ipynb"
    >>> lessons([lesson]) == [lesson]
    True
    """
    if notebooks:
        return _existing(notebooks)
    found = sorted(Path("notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise FileNotFoundError(
            f"No lessons to build: {Path('notebooks').resolve()} has no NN_*.ipynb. Run this "
            "from the course repository's root folder (the one with notebooks/), or pass "
            "notebook paths."
        )
    return found


def build_all(notebooks, out_dir: str | Path) -> list[Path]:
    """Build one reveal.js deck per notebook, ``out_dir/NN_name.slides.html``, offline-ready.

    Parameters
    ----------
    notebooks : iterable of path
        ``.ipynb`` files, executed (figures in the slides) or not (code and text only).
    out_dir : path
        Where the decks go; the vendored assets are copied next to them.

    Returns
    -------
    list of Path
        The decks written.

    Examples
    --------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> decks = build_all([ASSETS_DIR.parent / "notebooks" / "01_cnn_recap.ipynb"], tmp.name)
    slides: ...01_cnn_recap.ipynb -> ...01_cnn_recap.slides.html
    >>> [deck.name for deck in decks]
    ['01_cnn_recap.slides.html']
    >>> tmp.cleanup()
    """
    import nbformat

    from course_utils import cache

    notebooks = _existing(notebooks)
    out_dir = install_assets(out_dir)
    written = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        target = out_dir / f"{path.stem}.slides.html"
        cache.atomic_write_bytes(target, export(nb, "slides").encode())
        target.chmod(0o644)  # a page to open or serve, not a private cache file
        print(f"slides: {path} -> {target}")
        written.append(target)
    return written


def main(out: str | Path = "slides", notebooks=None, executed_dir="build/notebooks") -> list[Path]:
    """``python -m course_utils slides``: decks of ``notebooks`` (default: every lesson, see
    :func:`lessons`)."""
    return build_all([source_for(p, executed_dir) for p in lessons(notebooks)], out)
