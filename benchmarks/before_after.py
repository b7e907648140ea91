"""Time every attribution method of two checkouts of the course in one run: before and after a
change of the package's plumbing (the redesign of the issue "One plumbing and one template").

    python -m benchmarks.before_after BEFORE_DIR AFTER_DIR [--rounds 3] [--calls 3]
                                      [--only METHOD ...] [--out FILE]

Each round starts one worker process per checkout, in alternation (before, after, before, ...),
so both see the same machine load; a worker imports that checkout's ``course_utils``, builds
``keras.applications.MobileNetV2(weights=None)`` at 224 px (random weights: timing does not need
trained ones; nothing is downloaded), makes one untimed call of each method (tracing) and then
``--calls`` timed calls on 4 images. The table shows, per method, the median over rounds and
calls of each checkout and their ratio (after / before; above 1 means slower), and the same for
the fastest call of each (``best``): on a machine shared with other work the median follows the
load, the fastest call is nearer what the code costs. ``--only`` times some of the methods.
Output: stdout and ``benchmarks/results/before_after.txt`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "before_after.txt"

#: Method -> options: settings a lesson uses, sized so that a call takes about a second.
CASES = {
    "saliency": {},
    "smoothgrad": {"n_samples": 16},
    "integrated_gradients": {"steps": 16},
    "occlusion": {"window": 32, "stride": 32},
    "cam": {},
    "gradcam": {},
    "gradcam_plus_plus": {},
    "lime": {"n_samples": 200},
    "shap_gradients": {"n_samples": 16},
}

WORKER = r"""
import json, sys, time, warnings
import numpy as np, keras
warnings.simplefilter("ignore")
import course_utils
from course_utils import attribution
print("PACKAGE " + course_utils.__file__, file=sys.stderr)
cases, calls = json.loads(sys.argv[1]), int(sys.argv[2])
keras.utils.set_random_seed(0)
model = keras.applications.MobileNetV2(weights=None)
x = np.random.default_rng(0).uniform(-1, 1, (4, 224, 224, 3)).astype("float32")
out = {}
for name, options in cases.items():
    fn = attribution.METHODS[name]
    if name == "shap_gradients":
        options = dict(options, background=x[:2])
    fn(model, x, 0, **options)
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        fn(model, x, 0, **options)
        times.append(time.perf_counter() - t)
    out[name] = times
print("RESULT " + json.dumps(out))
"""


def run_worker(checkout: Path, cases: dict, calls: int) -> dict:
    """Time every case in a fresh process that imports ``checkout``'s package."""
    env = dict(os.environ, PYTHONPATH=str(checkout), TF_CPP_MIN_LOG_LEVEL="2")
    # cwd too: ``python -c`` puts the working folder first on sys.path, before PYTHONPATH
    proc = subprocess.run([sys.executable, "-c", WORKER, json.dumps(cases), str(calls)],
                          env=env, cwd=checkout, capture_output=True, text=True, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode or line is None:
        raise RuntimeError(f"The worker for {checkout} failed:\n{proc.stderr[-2000:]}")
    if f"PACKAGE {checkout.resolve()}" not in proc.stderr:
        raise RuntimeError(f"The worker for {checkout} imported another course_utils: "
                           f"{[ln for ln in proc.stderr.splitlines() if 'PACKAGE' in ln]}")
    return json.loads(line[len("RESULT "):])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=sorted(CASES), help="methods to time")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    cases = {k: v for k, v in CASES.items() if not args.only or k in args.only}
    start = time.time()
    times: dict[str, dict[str, list]] = {"before": {}, "after": {}}
    for r in range(args.rounds):
        for label, checkout in (("before", args.before), ("after", args.after)):
            print(f"round {r + 1}/{args.rounds}: {label}", file=sys.stderr, flush=True)
            for name, ts in run_worker(checkout, cases, args.calls).items():
                times[label].setdefault(name, []).extend(ts)
    rev = {k: subprocess.run(["git", "-C", str(p), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
           for k, p in (("before", args.before), ("after", args.after))}
    lines = [
        "Attribution methods before and after: MobileNetV2 (random weights), 4 images of 224 px",
        f"{platform.node() or 'host'} | {os.cpu_count()} CPUs | before {rev['before']} | after "
        f"{rev['after']} | {args.rounds} rounds x {args.calls} calls, alternating processes | "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} | run "
        f"{(time.time() - start) / 60:.1f} min",
        "",
        f"load average at the end: {os.getloadavg()[0]:.1f}",
        "",
        f"{'method':22s} {'options':30s} {'median: before':>14s} {'after':>7s} {'ratio':>6s}"
        f" {'best: before':>13s} {'after':>7s} {'ratio':>6s}",
        "-" * 111,
    ]
    for name, options in cases.items():
        b, a = (statistics.median(times[k][name]) for k in ("before", "after"))
        bb, ab = (min(times[k][name]) for k in ("before", "after"))
        lines.append(f"{name:22s} {json.dumps(options):30s} {b:14.3f} {a:7.3f} {a / b:5.2f}x"
                     f" {bb:13.3f} {ab:7.3f} {ab / bb:5.2f}x")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
