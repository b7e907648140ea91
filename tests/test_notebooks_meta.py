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


def _repository_url() -> str:
    import tomllib

    pyproject = Path(__file__).parent.parent / "pyproject.toml"
    return tomllib.loads(pyproject.read_text())["project"]["urls"]["Repository"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_code_cell_installs_the_course_on_colab_from_the_one_repository_url(path):
    import re

    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert 'if "google.colab" in sys.modules:' in first.source, (
        f"{path.name}: the first code cell must install the course on Colab (copy it from "
        "another lesson)")
    assert "pip" in first.source and "install" in first.source
    urls = re.findall(r"https?://[^\s\"']+", first.source)
    assert urls == [_repository_url()], (
        f"{path.name}: the Colab cell installs from {urls}, pyproject.toml's [project.urls] "
        f"Repository is {_repository_url()}")
    # the same cell everywhere, so a change to it is made once and checked here
    reference = next(c for c in nbformat.read(NOTEBOOKS[0], as_version=4).cells
                     if c.cell_type == "code")
    assert first.source == reference.source
