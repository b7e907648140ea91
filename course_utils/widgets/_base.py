"""Shared plumbing of every explorer: controls wired with ``interactive_output``, a fixed-size
output, a cache of computed results keyed by the control values, and update timings.

An :class:`Explorer` knows nothing about attribution or features: it gets

- ``controls``: a dict ``name -> ipywidgets`` control (sliders, dropdowns);
- ``compute(**values) -> result``: the slow part (a map, an image), cached by the values of the
  controls it reads (``compute_keys``; all controls by default);
- ``render(result, **values) -> object``: the fast part, whatever ``IPython.display.display``
  shows (usually PNG bytes wrapped in ``IPython.display.Image``);
- ``status(result, **values) -> str`` (optional): one line of HTML under the controls.

Every update is timed (:attr:`Explorer.last`), so tests and benchmarks can drive an explorer
headlessly with :meth:`Explorer.set` and read what changed and how long it took.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets
import numpy as np


def _freeze(value: Any) -> Any:
    """A hashable stand-in for a control value (lists and arrays become tuples)."""
    if isinstance(value, np.ndarray):
        return ("ndarray", value.shape, value.tobytes())
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, float):
        return round(value, 10)  # 0.1 + 0.2 and 0.3 are the same slider position
    return value


class LRUCache:
    """A small least-recently-used cache that counts hits and misses.

    Examples
    --------
    >>> c = LRUCache(maxsize=2)
    >>> c.get_or_compute(("a",), lambda: 1), c.get_or_compute(("a",), lambda: 2)
    (1, 1)
    >>> c.hits, c.misses
    (1, 1)
    """

    def __init__(self, maxsize: int = 128):
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize}.")
        self.maxsize = int(maxsize)
        self._data: OrderedDict = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __contains__(self, key) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def get_or_compute(self, key, compute: Callable[[], Any]) -> Any:
        """The cached value of ``key``, computing (and storing) it on a miss."""
        if key in self._data:
            self._data.move_to_end(key)
            self.hits += 1
            return self._data[key]
        self.misses += 1
        value = compute()
        self._data[key] = value
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        self._data.clear()


@dataclass
class Update:
    """What one update of an explorer did."""

    values: dict
    cached: bool
    compute_seconds: float
    render_seconds: float
    result: Any = field(repr=False, default=None)
    shown: Any = field(repr=False, default=None)

    @property
    def seconds(self) -> float:
        """Total time of the update (compute or cache look-up, plus render)."""
        return self.compute_seconds + self.render_seconds


def control_values(control: widgets.Widget) -> list:
    """Every value a control can take (slider positions, dropdown options).

    Examples
    --------
    >>> control_values(widgets.IntSlider(min=1, max=5, step=2))
    [1, 3, 5]
    """
    if isinstance(control, (widgets.IntSlider, widgets.FloatSlider)):
        lo, hi, step = control.min, control.max, control.step
        n = int(np.floor((hi - lo) / step + 1e-9)) + 1
        vals = [lo + k * step for k in range(n)]
        return [int(v) for v in vals] if isinstance(control, widgets.IntSlider) else [
            round(float(v), 10) for v in vals]
    options = getattr(control, "options", None)
    if options is not None:
        return [o[1] if isinstance(o, tuple) else o for o in options]
    return [control.value]


def options(name: str, values: Iterable, cast: Callable[[Any], Any] | None = None) -> tuple:
    """The values a menu or selection slider offers, as a tuple (each through ``cast``); an
    empty list is an error naming the option.

    Examples
    --------
    >>> options("steps", [4.0, 16], int)
    (4, 16)
    """
    values = tuple(values if cast is None else (cast(v) for v in values))
    if not values:
        raise ValueError(f"{name} is empty: give at least one value to offer.")
    return values


class Explorer:
    """Controls + one fixed-size output, fed from a cache; see the module docstring.

    Parameters
    ----------
    controls
        ``name -> control``; the names are the keyword arguments of ``compute`` and ``render``.
    compute
        ``compute(**values) -> result``, cached.
    render
        ``render(result, **values) -> displayable``.
    status
        Optional ``status(result, **values) -> str`` shown as HTML under the controls.
    compute_keys
        The control names that ``compute`` depends on (the cache key); controls outside it
        only re-render. Default: all.
    canonical
        Optional ``canonical(values) -> values`` applied before keying and computing, e.g. to
        blank out a control that the current mode ignores (so moving it is a cache hit).
    warm_current
        Cache-key controls that :meth:`warm` keeps at their current value unless told
        otherwise (menus of variants whose every view would multiply the warming).
    title
        A heading shown above the controls.
    width, height
        The output's fixed size (CSS), so the page does not jump while sliders move.
    cache_size
        How many computed results are kept.
    render_cache_size
        How many drawn views are kept (keyed by every control's value): going back to a view
        seen before skips drawing too.

    Examples
    --------
    Outside a notebook an explorer draws by printing, so the example silences stdout and
    reads what each update did from the explorer itself:

    >>> import contextlib, io
    >>> slider = widgets.IntSlider(value=1, min=1, max=3)
    >>> with contextlib.redirect_stdout(io.StringIO()):
    ...     ex = Explorer({"n": slider}, compute=lambda n: n * n, render=lambda r, n: f"{r}")
    ...     first, third, back = ex.last, ex.set(n=3), ex.set(n=1)
    >>> first.result, third.result, back.result
    (1, 9, 1)
    >>> first.cached, third.cached, back.cached, back.shown
    (False, False, True, '1')
    >>> ex.cache.hits, ex.cache.misses, len(ex.history)
    (1, 2, 3)
    """

    def __init__(
        self,
        controls: Mapping[str, widgets.Widget],
        compute: Callable[..., Any],
        render: Callable[..., Any],
        *,
        status: Callable[..., str] | None = None,
        compute_keys: Iterable[str] | None = None,
        canonical: Callable[[dict], dict] | None = None,
        warm_current: Iterable[str] = (),
        title: str = "",
        width: str = "820px",
        height: str = "360px",
        cache_size: int = 128,
        render_cache_size: int = 256,
    ):
        if not controls:
            raise ValueError("An explorer needs at least one control.")
        self.controls = dict(controls)
        self._compute = compute
        self._render = render
        self._status = status
        keys = list(self.controls) if compute_keys is None else list(compute_keys)
        unknown = set(keys) - set(self.controls)
        if unknown:
            raise ValueError(f"compute_keys {sorted(unknown)} are not controls "
                             f"({sorted(self.controls)}).")
        self.compute_keys = keys
        self.warm_current = tuple(warm_current)
        self._canonical = canonical
        self.cache = LRUCache(cache_size)
        self.drawn = LRUCache(render_cache_size)
        self.history: list[Update] = []
        self._paused = False
        self.status_html = widgets.HTML(value="")
        self.output = widgets.interactive_output(self._on_change, self.controls)
        self.output.layout = widgets.Layout(width=width, height=height, overflow="hidden")
        children = []
        if title:
            children.append(widgets.HTML(f"<b>{title}</b>"))
        children += [widgets.HBox(list(self.controls.values())), self.status_html, self.output]
        self.widget = widgets.VBox(children)

    # ---------------------------------------------------------------- the update
    def values(self) -> dict:
        """The current value of every control."""
        return {k: c.value for k, c in self.controls.items()}

    def _inputs(self, values: Mapping[str, Any]) -> dict:
        vals = {k: values[k] for k in self.compute_keys}
        return self._canonical(vals) if self._canonical else vals

    def key(self, values: Mapping[str, Any]) -> tuple:
        """The cache key of a set of control values."""
        return tuple((k, _freeze(v)) for k, v in self._inputs(values).items())

    def result(self, **values) -> Any:
        """The (cached) result for ``values`` (missing ones: the controls' current values)."""
        vals = self._inputs(self.values() | values)
        return self.cache.get_or_compute(self.key(vals), lambda: self._compute(**vals))

    def _on_change(self, **values) -> None:
        if self._paused:
            return
        from IPython.display import HTML, display

        cached = self.key(values) in self.cache
        t0 = time.perf_counter()
        try:
            result = self.result(**values)
        except Exception as exc:  # noqa: BLE001 - show the message in place of the picture
            self.status_html.value = f"<span style='color:#b00'>{type(exc).__name__}: {exc}</span>"
            display(HTML(f"<pre>{type(exc).__name__}: {exc}</pre>"))
            self.history.append(Update(dict(values), cached, time.perf_counter() - t0, 0.0,
                                       shown=exc))
            return
        t1 = time.perf_counter()
        view_key = self.key(values) + tuple(
            (k, _freeze(v)) for k, v in values.items() if k not in self.compute_keys)
        shown = self.drawn.get_or_compute(view_key, lambda: self._render(result, **values))
        display(shown)
        t2 = time.perf_counter()
        timing = f"{'from cache' if cached else 'computed'} in {t1 - t0:.2f} s, drawn in " \
                 f"{t2 - t1:.2f} s"
        extra = self._status(result, **values) if self._status else ""
        self.status_html.value = f"{extra}{' · ' if extra else ''}<small>{timing}</small>"
        self.history.append(Update(dict(values), cached, t1 - t0, t2 - t1, result, shown))

    @property
    def last(self) -> Update:
        """The most recent update."""
        if not self.history:
            raise RuntimeError("The explorer has not drawn anything yet.")
        return self.history[-1]

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Within the block, control changes do not trigger updates."""
        old, self._paused = self._paused, True
        try:
            yield
        finally:
            self._paused = old

    def refresh(self) -> Update:
        """Redraw with the current values (what a slider move triggers)."""
        with self.output:
            from IPython.display import clear_output

            clear_output(wait=True)
            self._on_change(**self.values())
        return self.last

    def set(self, **values) -> Update:
        """Set several controls at once, as a user would, and return the one :class:`Update`.

        Headless tests and the benchmark drive explorers with it; ``.seconds`` of the result is
        the update time a user waits for.
        """
        unknown = set(values) - set(self.controls)
        if unknown:
            raise ValueError(f"Unknown control(s) {sorted(unknown)}; this explorer has "
                             f"{sorted(self.controls)}.")
        for k, v in values.items():
            if getattr(self.controls[k], "options", None) is not None:
                valid = control_values(self.controls[k])
                if v not in valid:
                    raise ValueError(f"{v!r} is not an option of control {k!r}; valid "
                                     f"values: {valid}.")
        with self.paused():
            for k, v in values.items():
                self.controls[k].value = v
        return self.refresh()

    # ---------------------------------------------------------------- warming the cache
    def grid(self, **only) -> list[dict]:
        """Every combination of the values of the cache-key controls (``only`` restricts a
        control to the given values; those of ``warm_current`` stay at their current value)."""
        current = {k: [self.controls[k].value] for k in self.warm_current}
        axes = {k: list(only.get(k, current.get(k) or control_values(self.controls[k])))
                for k in self.compute_keys}
        return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]

    def warm(self, progress: bool = True, **only) -> int:
        """Compute and cache the results of every combination in :meth:`grid` (``only`` limits
        it), so that later slider moves are served from the cache. Returns the number computed.
        """
        todo = [v for v in self.grid(**only) if self.key(self.values() | v) not in self.cache]
        if len(todo) > self.cache.maxsize:
            raise ValueError(f"Warming {len(todo)} views would overflow the cache of "
                             f"{self.cache.maxsize}; restrict it, e.g. warm(n_samples=[10, 20]).")
        items = todo
        if progress and len(todo) > 1:
            from tqdm.auto import tqdm

            items = tqdm(todo, desc="warming the explorer", leave=False)
        for v in items:
            self.result(**v)
        return len(todo)

    # ---------------------------------------------------------------- display
    def _repr_mimebundle_(self, **kwargs):
        """The live widget, plus a PNG still of the current view: JupyterLab shows the widget;
        readers without a kernel (nbconvert's HTML of ``make course``, GitHub) show the still."""
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        shown = self.history[-1].shown if self.history else None
        if getattr(shown, "format", None) == "png" and isinstance(shown.data, bytes):
            bundle["image/png"] = base64.b64encode(shown.data).decode("ascii")
        return bundle

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} controls={sorted(self.controls)} "
                f"cached={len(self.cache)}>")
