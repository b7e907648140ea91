"""Static checks of the notebooks: paired scripts in sync, small files, slide metadata."""

from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_and_its_jupytext_script_are_in_sync(path):
    script = path.parent / "py" / f"{path.stem}.py"
    assert script.is_file(), f"{path.name} has no paired script {script}"
    nb = nbformat.read(path, as_version=4)
    paired = jupytext.read(script)
    assert [(c.cell_type, c.source) for c in nb.cells] == [
        (c.cell_type, c.source) for c in paired.cells
    ], f"{path.name} differs from {script.name}: run `jupytext --sync {script}`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_small_and_starts_with_its_goal(path):
    assert path.stat().st_size < 2_000_000, f"{path.name} is over 2 MB: strip its outputs"
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert "**Goal.**" in first.source
    assert first.metadata.get("slideshow", {}).get("slide_type") == "slide"
    assert any("Exercise" in c.source for c in nb.cells if c.cell_type == "markdown")
