"""Run every lesson, in CI's quick mode, under several independent trainings of the course's
models, and report what each lesson printed and which of its checks failed.

A lesson's check must hold for any honest training of the course's models, not only for the
one this machine happens to produce: TensorFlow picks CPU kernels by instruction set, so
another machine trains a slightly different model. Each setting below stands in for another
machine or another run; each trains its own models into its own data folder (about 10
minutes), so a second run of the same setting only executes the notebooks.

Usage::

    python tools/lesson_margins.py --out /tmp/margins                  # every setting
    python tools/lesson_margins.py --out /tmp/margins --settings avx2 --notebooks 03 04

The report (``<out>/report.txt``) lists, per setting and notebook, the failed cells with their
error, and every printed line: the measured numbers the lessons quote. Compare the settings'
numbers, then assert well inside the worst of them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: name -> environment overrides; each stands in for another machine or another training.
SETTINGS: dict[str, dict[str, str]] = {
    "default": {},
    "onednn0": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "seed1": {"COURSE_TRAIN_SEED": "1"},
    "seed2": {"COURSE_TRAIN_SEED": "2"},
}


def train() -> None:
    """Train (or load) the course's three models here, before any lesson runs: in a plain
    process, without a notebook's per-cell time limit."""
    from course_utils import models

    start = time.time()
    models.fashion_cnn()
    models.shapes_cnn()
    models.shapes_cnn(spurious=True)
    print(f"models ready in {time.time() - start:.0f} s", flush=True)


def run_setting(name: str, out: Path, notebooks: list[Path], timeout: int) -> None:
    """Execute ``notebooks`` in a fresh kernel per notebook with the setting's environment;
    write the executed copies and a text digest under ``out/name``."""
    import nbformat
    from nbconvert.preprocessors import ExecutePreprocessor

    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    train()
    for nb_path in notebooks:
        start = time.time()
        nb = nbformat.read(nb_path, as_version=4)
        lines = []
        try:
            ExecutePreprocessor(timeout=timeout, kernel_name="python3",
                                allow_errors=True).preprocess(
                nb, {"metadata": {"path": str(nb_path.parent)}})
        except Exception as exc:  # noqa: BLE001 - a cell timeout or a dead kernel: report it
            lines.append(f"FAILED to execute: {type(exc).__name__}: {str(exc)[:300]}")
        nbformat.write(nb, folder / nb_path.name)
        lines.insert(0, f"## {nb_path.stem} [{name}] {time.time() - start:.0f} s")
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    lines.append(f"FAILED cell {index}: {output['ename']}: {output['evalue']}")
                    source = cell.source.splitlines()
                    lines += [f"    | {s}" for s in source if "assert" in s]
                elif output.get("output_type") == "stream" and output.get("name") == "stdout":
                    lines += [f"cell {index}: {s}" for s in output["text"].splitlines()]
        (folder / f"{nb_path.stem}.txt").write_text("\n".join(lines) + "\n")
        print("\n".join(lines[:1] + [s for s in lines if s.startswith("FAILED")]), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--settings", default=",".join(SETTINGS),
                        help=f"comma-separated, from {', '.join(SETTINGS)}")
    parser.add_argument("--notebooks", nargs="*", default=[],
                        help="notebook number prefixes (default: every lesson; 'none': only "
                             "train the models)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one setting here
    args = parser.parse_args(argv)
    every = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    notebooks = [p for p in every if not args.notebooks
                 or any(p.name.startswith(k) for k in args.notebooks)]
    if args.notebooks == ["none"]:
        notebooks = []
    if args.one:
        run_setting(args.one, args.out, notebooks, args.timeout)
        return 0
    names = [n.strip() for n in args.settings.split(",") if n.strip()]
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        parser.error(f"unknown settings {unknown}; valid: {', '.join(SETTINGS)}")
    for name in names:
        # A child process per setting: the kernel-selection variables must be set before
        # TensorFlow loads, and each setting trains into its own data folder.
        env = {**os.environ, "COURSE_QUICK": "1", "COURSE_OFFLINE": "1",
               "COURSE_DATA_DIR": str(args.out / name / "data"), **SETTINGS[name]}
        command = [sys.executable, __file__, "--out", str(args.out), "--one", name,
                   "--timeout", str(args.timeout), "--notebooks", *args.notebooks]
        subprocess.run(command, env=env, check=True)
    report = args.out / "report.txt"
    report.write_text("".join(
        (args.out / n / f"{p.stem}.txt").read_text() for n in names for p in notebooks
        if (args.out / n / f"{p.stem}.txt").is_file()
    ))
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
