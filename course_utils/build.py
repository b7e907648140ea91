"""Building the course: every lesson executed headless, one progress line per notebook, and the
run time of every cell recorded.

``python -m course_utils build`` (``make course``) runs each lesson top to bottom in a fresh
kernel (two kernels at once by default, each its own notebook, longest first: :func:`schedule`),
writes the executed notebook, its HTML and the slides, and shows one line per notebook while it
runs::

    [ 3/12] 03_feature_visualization  9/21 cells  01:12 elapsed, ~0:55 left (course ~6 min left)

The estimate of what is left comes from the cell times of the last build in the same mode
(``COURSE_QUICK`` on or off), read from ``<out>/timings.json`` or, before any build, from a
reference ``notebooks/timings.json`` (the record of a quick and a full build on an idle
2-core machine, shipped with the course), scaled by how fast this machine has been so far;
for a notebook with neither (or whose cells changed in number) the line gives the notebook's
own estimate and no course total. Each build writes the times it
measured to ``<out>/timings.json`` (atomically, after every notebook);
``python -m course_utils timings`` prints them as README's table.

A lesson that fails does not stop the build: its executed copy (with the error in it) and its
HTML are still written, the other lessons run, and the build ends with :class:`BuildFailed`
naming every lesson that failed and its error. A failed lesson's times are not recorded (its
cells did not all run). While a cell runs, the reply to it is awaited in slices of a second
(:func:`poll_in_slices`): a wait of the whole timeout at once can miss a reply that has
arrived after widget messages and hang the build with the kernel idle (nbclient issue #312).

Examples
--------
>>> remaining([10.0, 20.0, 30.0], done=1, elapsed=20.0)  # twice as slow as the reference
100.0
>>> remaining(None, done=2, elapsed=10.0, n_cells=4)  # no reference: the mean cell so far
10.0
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from queue import Empty

from tqdm.auto import tqdm

from course_utils import cache, config

#: A measured reference record of cell times (relative to the repository root), used when present.
REFERENCE = Path("notebooks") / "timings.json"
MODES = ("quick", "full")


def mode() -> str:
    """``"quick"`` when ``COURSE_QUICK`` is on (what CI runs), else ``"full"``.

    Examples
    --------
    >>> mode() in MODES
    True
    """
    return "quick" if config.quick() else "full"


def speed(expected_done: float, elapsed: float) -> float:
    """How much slower than the reference this run is, from the work done so far: the ratio of
    the elapsed time to the reference time of the same cells, kept within [0.25, 4] and 1
    until the reference has seen 5 seconds of work (one fast cell says little).

    Examples
    --------
    >>> speed(10.0, 15.0)
    1.5
    >>> speed(1.0, 30.0)  # too little work seen yet
    1.0
    """
    if expected_done < 5.0:
        return 1.0
    return min(4.0, max(0.25, elapsed / expected_done))


def remaining(expected: Sequence[float] | None, done: int, elapsed: float,
              n_cells: int | None = None) -> float:
    """Seconds left in a notebook after ``done`` code cells took ``elapsed`` seconds.

    With ``expected`` (the reference time of every code cell, in order): the reference time of
    the cells left, scaled by :func:`speed`. Without it (a new notebook, or one whose cells
    changed in number): the mean time of the cells so far times the ``n_cells - done`` left.
    """
    if expected is not None:
        return sum(expected[done:]) * speed(sum(expected[:done]), elapsed)
    if n_cells is None:
        raise ValueError("remaining() needs expected cell times or n_cells")
    return elapsed / max(done, 1) * (n_cells - done)


def clock(seconds: float) -> str:
    """``m:ss``.

    Examples
    --------
    >>> clock(75.4)
    '1:15'
    """
    s = int(round(seconds))
    return f"{s // 60}:{s % 60:02d}"


class BuildFailed(RuntimeError):
    """Lessons failed while the course was built: ``failures`` maps each one's stem to the
    last line of its error; the rest of the course was built all the same."""

    def __init__(self, failures: dict[str, str]):
        self.failures = dict(failures)
        lines = "\n".join(f"  {stem}: {error}" for stem, error in self.failures.items())
        super().__init__(f"{len(self.failures)} lesson(s) failed; their executed copies in "
                         f"<out>/notebooks show the error in place:\n{lines}")


def poll_in_slices(channel, every: float = 1.0):
    """Make the asynchronous ``channel.get_msg(timeout=T)`` (nbclient's kernel client) wait in
    slices of at most ``every`` seconds until a message comes or ``T`` has passed (``T=None``:
    until a message comes), instead of one wait of ``T``; returns the channel.

    One long poll of the kernel's shell socket can sleep through a reply that has already
    arrived (nbclient issue #312, with ipywidgets): the build would hang with the kernel idle.

    Examples
    --------
    >>> import asyncio
    >>> class Channel:  # a reply that the first slices miss
    ...     waits = []
    ...     async def get_msg(self, timeout=None):  # returns at once: the real one waits
    ...         self.waits.append(timeout)
    ...         if len(self.waits) < 3:
    ...             raise Empty
    ...         return {"msg": "reply"}
    >>> asyncio.run(poll_in_slices(Channel(), every=0.01).get_msg(timeout=60))
    {'msg': 'reply'}
    >>> Channel.waits
    [0.01, 0.01, 0.01]
    """
    get = channel.get_msg
    if getattr(get, "_in_slices", False):
        return channel

    async def get_msg(timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = every if deadline is None else deadline - time.monotonic()
            try:
                return await get(timeout=max(0.0, min(every, left)))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    get_msg._in_slices = True
    channel.get_msg = get_msg
    return channel


def _slice_shell(client, **_) -> None:
    """nbclient's hook when a notebook's kernel is ready: its shell replies polled in slices."""
    poll_in_slices(client.kc.shell_channel)


def _error_line(err: BaseException) -> str:
    """The exception a lesson raised and the first line of its message, without colours."""
    name, value = getattr(err, "ename", None), getattr(err, "evalue", None)
    if name:
        first = str(value).strip().splitlines()
        return f"{name}: {first[0]}" if first else name
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return lines[-1] if lines else type(err).__name__


def load_timings(out: Path) -> dict:
    """The cell times of the last build into ``out`` (``out/timings.json``) or, when there is
    none, the reference ``notebooks/timings.json``; ``{}`` when neither exists. Each is
    ``{mode: {notebook stem: [seconds per code cell]}}``."""
    for path in (Path(out) / "timings.json", REFERENCE):
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # unreadable: estimate from the cells so far instead
            if isinstance(data, dict):
                return data
    return {}


def _expected(timings: dict, stem: str, n_cells: int) -> list[float] | None:
    cells = timings.get(mode(), {}).get(stem)
    if isinstance(cells, list) and len(cells) == n_cells:
        return [float(c) for c in cells]
    return None


def totals(reference: dict, stems: Sequence[str]) -> dict[str, float | None]:
    """Each notebook's reference time in seconds (the sum of its cells), ``None`` without one.

    Examples
    --------
    >>> totals({"01_a": [5.0, 1.0]}, ["01_a", "02_b"])
    {'01_a': 6.0, '02_b': None}
    """
    return {s: (float(sum(reference[s])) if isinstance(reference.get(s), list) else None)
            for s in stems}


def schedule(seconds: dict[str, float | None], jobs: int) -> list[str]:
    """The order in which ``jobs`` kernels take the notebooks (``{stem: reference seconds}``,
    in the course's order, as :func:`totals` gives): as given for one kernel; for several,
    longest first (a notebook with no reference first: it may be the longest), so that the
    last notebook to start is a short one and the kernels finish together.

    Examples
    --------
    >>> schedule({"01_a": 5.0, "02_b": 50.0, "03_c": None}, jobs=2)
    ['03_c', '02_b', '01_a']
    >>> schedule({"01_a": 5.0, "02_b": 50.0}, jobs=1)
    ['01_a', '02_b']
    """
    if jobs <= 1:
        return list(seconds)
    return sorted(seconds, key=lambda s: -(float("inf") if seconds[s] is None else seconds[s]))


class _Course:
    """What is left of the whole build, for every progress line: the reference time of the
    notebooks not started yet, scaled by how fast this machine has been, plus what the running
    notebooks have left, shared among ``jobs`` kernels; ``None`` while a notebook not started
    yet has no reference time."""

    def __init__(self, pending: dict[str, float | None], jobs: int):
        self.pending, self.jobs = dict(pending), jobs
        self.running: list[_Progress] = []
        self.scale = 1.0
        self.lock = threading.Lock()

    def start(self, stem: str, progress: _Progress) -> None:
        with self.lock:
            self.pending.pop(stem, None)
            self.running.append(progress)

    def finish(self, progress: _Progress, expected_total: float) -> None:
        with self.lock:
            self.running.remove(progress)
            if expected_total:
                self.scale = speed(expected_total, sum(progress.times))

    def left(self) -> float | None:
        with self.lock:
            if None in self.pending.values():
                return None
            running = sum(p.left() for p in self.running)
            return (running + sum(self.pending.values()) * self.scale) / self.jobs


class _Progress:
    """The one line of a notebook: updated after every code cell, and every ``tick`` seconds
    while a long cell runs (elapsed time moves, the estimates count down)."""

    def __init__(self, label: str, n_cells: int, expected, course: _Course,
                 tick: float = 2.0):
        self.n_cells, self.expected, self.course = n_cells, expected, course
        self.start = time.perf_counter()
        self.times: list[float] = []
        self._last = self.start
        self.bar = tqdm(total=n_cells, desc=label, unit="cell", leave=True,
                        bar_format="{desc}  {n_fmt}/{total_fmt} cells  {elapsed} elapsed"
                                   "{postfix}")  # tqdm puts ", " before the postfix
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._show()
        self._ticker = threading.Thread(target=self._tick, args=(tick,), daemon=True)
        self._ticker.start()

    def left(self) -> float:
        """Seconds this notebook has left: the running cell counts down."""
        times, last = list(self.times), self._last
        left = remaining(self.expected, len(times), sum(times), self.n_cells)
        return max(0.0, left - (time.perf_counter() - last))

    def _show(self) -> None:
        left = self.left()
        course = self.course.left()
        if course is None:  # a later notebook has no reference time: no course estimate
            self.bar.set_postfix_str(f"~{clock(left)} left")
            return
        self.bar.set_postfix_str(f"~{clock(left)} left (course ~{course / 60:.0f} min left)")

    def _tick(self, every: float) -> None:
        while not self._stop.wait(every):
            with self._lock:
                self._show()

    def cell_done(self, cell, **_) -> None:
        if cell.cell_type != "code":
            return
        with self._lock:
            now = time.perf_counter()
            self.times.append(round(now - self._last, 2))
            self._last = now
            self.bar.update(1)
            self._show()

    def close(self) -> None:
        self._stop.set()
        self._ticker.join()
        self.bar.close()


def build(out: Path, notebooks: list[Path], timeout: int = 1800,
          jobs: int = 1) -> dict[str, list[float]]:
    """Execute ``notebooks`` headless: executed copies in ``out/notebooks``, HTML in
    ``out/html``, reveal.js slides in ``out/slides`` (readable offline) and the time of every
    code cell in ``out/timings.json``; one progress line per notebook.

    With ``jobs`` > 1, that many kernels run at once, each its own notebook, longest first
    (:func:`schedule`). On 2 cores two kernels finish the course in about 0.6 of the
    time of one (one kernel's imports, tracing and Python overlap the other's arithmetic);
    each cell then takes longer than alone, so the times recorded are those of a shared
    machine: build with ``jobs=1`` for the per-notebook times of README's table.

    Returns
    -------
    ``{notebook stem: [seconds per code cell]}`` of this build.

    Raises
    ------
    BuildFailed
        After every lesson has run, when any failed.
    """
    from concurrent.futures import ThreadPoolExecutor

    import nbformat

    from course_utils import slides

    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a whole number of kernels >= 1, got {jobs!r}")
    out = Path(out)
    html_dir, nb_dir = out / "html", out / "notebooks"
    nb_dir.mkdir(parents=True, exist_ok=True)
    slides.install_assets(html_dir, ("vendor",))  # require.js and MathJax, vendored in slides/
    timings = load_timings(out)
    recorded = json.loads(json.dumps(timings))  # what out/timings.json will hold
    reference = timings.get(mode(), {})
    measured, failures = {}, {}
    lock = threading.Lock()  # the records, the files written and nbconvert's exporters
    index = {p.stem: i for i, p in enumerate(notebooks)}
    paths = {p.stem: p for p in notebooks}
    seconds = totals(reference, list(paths))
    course = _Course(seconds, jobs)

    def run(stem: str) -> None:
        nb_path = paths[stem]
        nb = nbformat.read(nb_path, as_version=4)
        n_cells = sum(c.cell_type == "code" for c in nb.cells)
        progress = _Progress(f"[{index[stem] + 1:2d}/{len(notebooks)}] {stem}", n_cells,
                             _expected(timings, stem, n_cells), course)
        course.start(stem, progress)
        try:
            error = _execute(nb, nb_path, timeout, progress)
        finally:
            progress.close()
        course.finish(progress, (seconds[stem] or 0.0) if error is None else 0.0)
        with lock:
            if error is None:
                measured[stem] = progress.times
                recorded.setdefault(mode(), {})[stem] = progress.times
                cache.atomic_write_json(out / "timings.json", recorded)
            else:
                failures[stem] = error
            cache.atomic_write_bytes(nb_dir / nb_path.name, nbformat.writes(nb).encode())
            body = slides.export(nb, "html")
            cache.atomic_write_bytes(html_dir / f"{stem}.html", body.encode())

    order = schedule(seconds, jobs)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(run, order))  # list(): an unexpected error in a thread is raised here
    slides.build_all([nb_dir / p.name for p in notebooks], out / "slides")
    if failures:
        raise BuildFailed({p.stem: failures[p.stem] for p in notebooks if p.stem in failures})
    return {p.stem: measured[p.stem] for p in notebooks if p.stem in measured}


def _execute(nb, nb_path: Path, timeout: int, progress: _Progress) -> str | None:
    """Run ``nb`` in a fresh kernel, in place; the error line of a lesson that failed."""
    from nbclient.exceptions import CellExecutionError, DeadKernelError
    from nbconvert.preprocessors import ExecutePreprocessor

    client = ExecutePreprocessor(timeout=timeout, kernel_name="python3",
                                 on_cell_executed=progress.cell_done)
    client.on_notebook_start = partial(_slice_shell, client)
    try:
        client.preprocess(nb, {"metadata": {"path": str(nb_path.parent)}})
    except (CellExecutionError, DeadKernelError, TimeoutError) as err:
        return _error_line(err)
    return None


def table(timings: dict) -> str:
    """README's table of run times (minutes, one decimal) from ``{mode: {stem: [cell
    seconds]}}``, quick and full side by side, with the total.

    Examples
    --------
    >>> print(table({"quick": {"01_a": [30, 30]}, "full": {"01_a": [60, 120]}}))
    | notebook | quick (min) | full (min) |
    | --- | ---: | ---: |
    | 01_a | 1.0 | 3.0 |
    | **all** | **1.0** | **3.0** |
    """
    stems = sorted({s for m in MODES for s in timings.get(m, {})})

    def minutes(m: str, stem: str | None = None) -> str:
        cells = timings.get(m, {})
        if stem is None:
            if not cells:
                return "-"
            return f"**{sum(sum(v) for v in cells.values()) / 60:.1f}**"
        return f"{sum(cells[stem]) / 60:.1f}" if stem in cells else "-"

    rows = ["| notebook | quick (min) | full (min) |", "| --- | ---: | ---: |"]
    rows += [f"| {s} | {minutes('quick', s)} | {minutes('full', s)} |" for s in stems]
    rows.append(f"| **all** | {minutes('quick')} | {minutes('full')} |")
    return "\n".join(rows)
