"""Static checks of the notebooks: paired scripts in sync, small files, slide metadata."""

import ast
import builtins
import functools
import importlib
import inspect
import pkgutil
import re
import textwrap
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
    ], (f"{path.name} differs from {script.name}: after editing the script, run `jupytext "
        f"--update --to notebook {script} -o {path}` (keeps the outputs; `--sync` would write "
        "a second notebook beside the script)")


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


# --- Exercise solutions (issue #18) -------------------------------------------------------
# The rule: a solution that involves code is a code cell tagged `solution` (hidden in
# JupyterLab until the student opens it), so nbval runs it with the lesson. The Solutions
# markdown explains in prose; it may name a function (`features.natural_ratio`), but it holds
# no fenced code block and no call (`features.visualize(...)`, `np.bincount(...)`). Every
# `course_utils` name written in any markdown cell (`module.name`, `alias.name`,
# `course_utils.module.name`, a bare function called in a code span) must exist: a lesson
# once told students to call `high_freq_share`, a function that never existed.

SOLUTION_TAG = "solution"
_FENCED = re.compile(r"```(python|py|)\n(.*?)```", re.S)  # Python blocks; not ```bash
_INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


def _code_snippets(markdown: str) -> list[tuple[str, bool]]:
    """The code in a markdown text: (snippet, fenced) for fenced blocks and inline spans."""
    fenced = [(textwrap.dedent(m.group(2)), True) for m in _FENCED.finditer(markdown)]
    rest = re.sub(r"```.*?```", "", markdown, flags=re.S)
    # a span broken over two lines inside a numbered list: join the lines first
    rest = re.sub(r"\n\s*", " ", rest)
    return fenced + [(m.group(1), False) for m in _INLINE.finditer(rest)]


def _parse(snippet: str) -> ast.AST | None:
    try:
        return ast.parse(snippet)
    except SyntaxError:
        return None


def _code_cells_source(nb) -> str:
    lines = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            lines += [ln for ln in cell.source.splitlines()
                      if not ln.lstrip().startswith(("%", "!"))]  # magics and shell lines
    return "\n".join(lines)


def _bindings(tree: ast.AST) -> tuple[set[str], dict[str, str]]:
    """All names a code tree binds, and those bound to `course_utils` objects (name -> dotted
    path, e.g. ``fplot -> course_utils.features.plotting``)."""
    names: set[str] = set()
    course: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Import):
            for a in node.names:
                bound = a.asname or a.name.split(".")[0]
                names.add(bound)
                if a.name.split(".")[0] == "course_utils":
                    course[bound] = a.name if a.asname else "course_utils"
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                bound = a.asname or a.name
                names.add(bound)
                if node.module.split(".")[0] == "course_utils":
                    course[bound] = f"{node.module}.{a.name}"
    return names, course


def _resolve(dotted: str) -> bool:
    """Whether ``course_utils.a.b.c`` names a real module or attribute."""
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        if inspect.ismodule(obj):  # a submodule first: `attribution.occlusion` is also a function
            try:
                obj = importlib.import_module(".".join(parts[: i + 1]))
                continue
            except ImportError:
                pass
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return True


@functools.cache
def _submodules() -> dict[str, str]:
    """The `course_utils` modules by their last name (``occlusion`` ->
    ``course_utils.attribution.occlusion``), for prose such as `occlusion.spread`."""
    import course_utils

    found: dict[str, list[str]] = {}
    for info in pkgutil.walk_packages(course_utils.__path__, "course_utils."):
        found.setdefault(info.name.rsplit(".", 1)[-1], []).append(info.name)
    return {short: full[0] for short, full in found.items() if len(full) == 1}


@functools.cache
def _known_bare_names() -> frozenset[str]:
    """Names a code span may call without a module: the public functions, classes and
    methods of `course_utils` (prose writes `visualize(...)` for `features.visualize`), Keras
    layers (`Conv2D(64, 3)`), and PyTorch's `Conv2d`, which lesson 01 compares with Keras."""
    import keras

    import course_utils

    known = {"Conv2d"} | set(dir(keras.layers))
    for info in pkgutil.walk_packages(course_utils.__path__, "course_utils."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            known.add(name)
            if inspect.isclass(obj) and obj.__module__.startswith("course_utils"):
                known |= set(dir(obj))
    return frozenset(n for n in known if not n.startswith("_"))


def _dotted(node: ast.AST) -> list[str] | None:
    """``a.b.c`` as ["a", "b", "c"]; None for anything else (a call, a subscript...)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def _unresolved_names(nb) -> list[str]:
    """The `course_utils` references in the markdown cells of `nb` that do not exist."""
    names, course = _bindings(ast.parse(_code_cells_source(nb)))
    course.setdefault("course_utils", "course_utils")
    bad = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        text = cell.source
        # full paths anywhere, in code or in prose
        for path in re.findall(r"\bcourse_utils(?:\.[A-Za-z_]\w*)+", text):
            if not _resolve(path):
                bad.append(path)
        snippets = [(s, f, _parse(s)) for s, f in _code_snippets(text)]
        local = set().union(*[_bindings(t)[0] for _, _, t in snippets if t is not None])
        for snippet, fenced, tree in snippets:
            if tree is None:
                if fenced:
                    bad.append(f"a code block that is not Python: {snippet!r}")
                continue
            for node in ast.walk(tree):
                parts = _dotted(node) if isinstance(node, ast.Attribute) else None
                root = None
                if parts and parts[0] in course:
                    root = course[parts[0]]
                elif parts and parts[0] not in names | local and parts[0] in _submodules():
                    root = _submodules()[parts[0]]  # a module named in prose, not imported
                if root is not None:
                    path = ".".join([root, *parts[1:]])
                    if not _resolve(path):
                        bad.append(f"{'.'.join(parts)} ({path})")
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                        and node.func.id not in names | local | _known_bare_names()
                        and not hasattr(builtins, node.func.id)):
                    bad.append(f"{node.func.id}(...) is called but never defined or imported")
    return sorted(set(bad))


def _exercise_index(nb) -> int | None:
    return next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
                 and re.search(r"^#+ Exercises?\b", c.source, re.M)), None)


def _solutions_markdown(nb) -> str:
    """The markdown from the first Solutions heading (or <summary>) after the exercises on."""
    start = _exercise_index(nb)
    text = "\n".join(c.source for c in nb.cells[start:] if c.cell_type == "markdown")
    m = re.search(r"^#+ Solutions?\b|<summary>Solutions?", text, re.M)
    assert m, "the Exercises section has no Solutions (a '### Solutions' heading or <summary>)"
    return text[m.start():]


def _code_in_prose(markdown: str) -> list[str]:
    """Fenced blocks and calls in the code spans of a markdown text."""
    found = []
    for snippet, fenced in _code_snippets(markdown):
        tree = _parse(snippet)
        if fenced or (tree is not None and any(isinstance(n, ast.Call) for n in ast.walk(tree))):
            found.append(snippet.strip())
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_course_utils_name_in_the_markdown_exists(path):
    nb = nbformat.read(path, as_version=4)
    bad = _unresolved_names(nb)
    assert not bad, f"{path.name}: its text names functions that do not exist: {bad}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_solutions_with_code_are_tagged_code_cells_that_the_tests_run(path):
    nb = nbformat.read(path, as_version=4)
    start = _exercise_index(nb)
    assert start is not None, f"{path.name} has no Exercises section"
    code_in_prose = _code_in_prose(_solutions_markdown(nb))
    assert not code_in_prose, (
        f"{path.name}: these solutions are code in markdown, which nothing runs; make them a "
        f"code cell tagged {SOLUTION_TAG!r} (`# %% tags=[\"solution\"]`): {code_in_prose}")
    tagged = [(i, c) for i, c in enumerate(nb.cells)
              if SOLUTION_TAG in c.metadata.get("tags", [])]
    for i, cell in tagged:
        assert cell.cell_type == "code" and i > start, (
            f"{path.name}: cell {i} is tagged {SOLUTION_TAG!r} but is not a code cell after "
            "the exercises")
        assert cell.metadata.get("jupyter", {}).get("source_hidden") is True, (
            f"{path.name}: solution cell {i} must be hidden until opened: "
            '`# %% jupyter={"source_hidden": true} tags=["solution"]`')
        assert "raises-exception" not in cell.metadata.get("tags", [])
