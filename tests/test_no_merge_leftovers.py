"""No text file of the repository carries a merge's conflict markers."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {".venv", ".git", "build", "data", "slides", "node_modules", "__pycache__"}
SUFFIXES = {".py", ".md", ".ipynb", ".toml", ".yml", ".yaml", ".txt", ".cfg", ".json", ""}
MARKER = re.compile(r"^(<{7} |={7}$|>{7} )", re.M)


def _text_files():
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if any(part in SKIP for part in rel.parts) or not path.is_file():
            continue
        if path.suffix in SUFFIXES and path.stat().st_size < 5_000_000:
            yield rel, path


def test_no_conflict_markers():
    found = [f"{rel}:{text[:m.start()].count(chr(10)) + 1}"
             for rel, path in _text_files()
             for text in [path.read_text(errors="ignore")]
             for m in [MARKER.search(text)] if m]
    assert not found, f"merge conflict markers left in {found}"


def test_the_marker_pattern_finds_a_conflict():
    text = "a\n<<<<<<< HEAD\nb\n=======\nc\n>>>>>>> branch\n"
    assert len(MARKER.findall(text)) == 3 and not MARKER.search("a ======= b\n")
