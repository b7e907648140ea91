"""Run every benchmark module in this folder (each exposes ``main(argv)``)."""

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> None:
    for mod in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if mod.name.startswith("_"):
            continue
        print(f"== benchmarks.{mod.name}", flush=True)
        module = importlib.import_module(f"benchmarks.{mod.name}")
        # Extra command-line arguments go to every module; without any, each runs its defaults.
        module.main(sys.argv[1:]) if sys.argv[1:] else module.main()


if __name__ == "__main__":
    main()
