"""The receptive field of a unit: which input pixels one position of a layer can see.

Computed from the graph, layer by layer from the input, per axis (height, width). A tensor's
geometry is three numbers per axis: the first and the last input pixel that position 0 of
the feature map can see, ``lo`` and ``hi`` (``lo`` may be negative, ``hi`` beyond the image:
padding), and the ``jump`` in input pixels between two neighbouring positions. A window layer
(kernel ``k``, stride ``s``, dilation ``d``, ``p`` zeros padded before) maps it to

    lo' = lo - p * jump,    hi' = hi + ((k - 1) * d - p) * jump,    jump' = jump * s,

so position ``i`` of the layer sees the pixels ``lo' + i * jump'`` to ``hi' + i * jump'``.

- ``Conv2D``, ``DepthwiseConv2D``, ``SeparableConv2D``: kernel, strides, dilation;
  ``MaxPooling2D``, ``AveragePooling2D``: pool size and strides.
- ``padding="valid"``: ``p = 0``. ``padding="same"`` is TensorFlow's SAME: the total padding is
  ``max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)`` for an input of ``n`` positions, and
  ``p`` is its smaller half: with stride 2 on an even size the extra zero goes at the bottom and
  right, so ``p`` can be 0 (EfficientNet-Lite0's stem). It depends on ``n`` when ``s > 1``:
  a model that leaves its input size open needs ``input_size=(H, W)``.
- ``ZeroPadding2D`` (``p`` = its top/left padding) and ``Cropping2D`` (``p`` = minus its top/left
  cropping) shift the field.
- Layers that act on each position alone pass the geometry through (batch norm, activations,
  dropout, noise, rescaling, a ``Dense`` on a feature map...); merges (``Add``, ``Multiply``,
  ``Concatenate``...) take the union of their inputs' fields (a residual block sees what its
  widest branch sees); nested models are walked through.
- Anything else (upsampling, global pooling, reshapes, a ``Lambda``, a raw ``keras.ops``
  operation) has no receptive field this module can compute: asking for a layer behind one
  raises an error naming it. Layers *after* the one asked for are never looked at.

Examples
--------
>>> import keras
>>> m = keras.Sequential([keras.Input((32, 32, 3)),
...                       keras.layers.Conv2D(4, 3, padding="same", name="c1"),
...                       keras.layers.MaxPooling2D(name="pool"),
...                       keras.layers.Conv2D(4, 3, name="c2")])
>>> rf = receptive_field(m, "c2")
>>> rf.size, rf.jump, rf.start
((8, 8), (2, 2), (-1, -1))
>>> rf.box(0, 0)  # (top, left, bottom, right) of position (0, 0), bottom and right excluded
(-1, -1, 7, 7)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras

from course_utils import surgery
from course_utils.surgery import LayerRef

#: Layers that compute each position from that position alone (the geometry passes through).
POINTWISE = (
    keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.PReLU,
    keras.layers.ELU, keras.layers.Softmax, keras.layers.BatchNormalization,
    keras.layers.LayerNormalization, keras.layers.Dropout, keras.layers.SpatialDropout2D,
    keras.layers.GaussianNoise, keras.layers.GaussianDropout, keras.layers.AlphaDropout,
    keras.layers.ActivityRegularization, keras.layers.Rescaling, keras.layers.Normalization,
    keras.layers.Identity, keras.layers.Dense,
)
#: Layers that combine several inputs position by position (their fields are united).
MERGES = (
    keras.layers.Add, keras.layers.Subtract, keras.layers.Multiply, keras.layers.Average,
    keras.layers.Maximum, keras.layers.Minimum, keras.layers.Concatenate,
)
#: Window layers: (kernel, strides, dilation) attribute names.
WINDOWS = {
    keras.layers.Conv2D: ("kernel_size", "strides", "dilation_rate"),
    keras.layers.DepthwiseConv2D: ("kernel_size", "strides", "dilation_rate"),
    keras.layers.SeparableConv2D: ("kernel_size", "strides", "dilation_rate"),
    keras.layers.MaxPooling2D: ("pool_size", "strides", None),
    keras.layers.AveragePooling2D: ("pool_size", "strides", None),
}
_AXES = ("height", "width")


@dataclass(frozen=True)
class ReceptiveField:
    """The receptive field of the units of one layer (per axis: height, width).

    Position ``(y, x)`` of the layer sees the input pixels of rows ``start[0] + y * jump[0]``
    to ``start[0] + y * jump[0] + size[0] - 1`` (columns likewise): :meth:`box`. The box may
    reach outside the image (``start`` negative, or beyond the last row): there the network
    sees its own zero padding.

    Attributes
    ----------
    layer
        The layer's name (``"outer/inner"`` when nested).
    size
        Rows and columns of input pixels one unit sees.
    jump
        Input pixels between two neighbouring units (the product of the strides).
    start
        First row and column seen by unit ``(0, 0)`` (negative: it starts in the padding).
    map_size
        The layer's feature-map height and width (``None`` where the input size is open).
    input_size
        The model's input height and width (``None`` where open).
    """

    layer: str
    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[int, int]
    map_size: tuple[int | None, int | None]
    input_size: tuple[int | None, int | None]
    edges: tuple = field(default=(), repr=False, compare=False)

    def box(self, y: int, x: int) -> tuple[int, int, int, int]:
        """``(top, left, bottom, right)`` in input pixels of unit ``(y, x)``, bottom and right
        excluded, not clipped to the image."""
        top = self.start[0] + int(y) * self.jump[0]
        left = self.start[1] + int(x) * self.jump[1]
        return top, left, top + self.size[0], left + self.size[1]

    def clipped_box(self, y: int, x: int,
                    image_size: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
        """:meth:`box` clipped to an image of ``image_size`` (default: the model's input)."""
        h, w = image_size if image_size is not None else self.input_size
        if h is None or w is None:
            raise ValueError(f"The model's input size is open; give image_size=(H, W) to clip "
                             f"the field of {self.layer!r}.")
        top, left, bottom, right = self.box(y, x)
        return max(top, 0), max(left, 0), min(bottom, int(h)), min(right, int(w))

    def visible_box(self, y: int, x: int) -> tuple[int, int, int, int]:
        """The pixels unit ``(y, x)`` really depends on: :meth:`clipped_box`, except near a
        border, where a layer on the way may read only zeros it padded around a smaller map
        (e.g. a dilated kernel skipping the last position) and the unit sees less. Computed
        by clipping at every layer; what the support of its input gradient shows."""
        if not self.edges:
            return self.clipped_box(y, x)
        (first_y, last_y), (first_x, last_x) = self.edges
        h, w = self.input_size
        top, left = max(first_y(int(y)), 0), max(first_x(int(x)), 0)
        bottom, right = last_y(int(y)) + 1, last_x(int(x)) + 1
        return (top, left, bottom if h is None else min(bottom, h),
                right if w is None else min(right, w))


class _Edge:
    """Position -> the first (``low=True``) or last input pixel a position really sees on one
    axis, clipped at every layer to the positions that exist (not the zeros padded around
    them). Memoized: residual branches share their upstream edges."""

    def __init__(self, fn):
        self.fn = fn
        self.seen: dict[int, int] = {}

    def __call__(self, i: int) -> int:
        if i not in self.seen:
            self.seen[i] = self.fn(i)
        return self.seen[i]


_PIXEL = _Edge(lambda i: i)


@dataclass(frozen=True)
class _Geometry:
    """What one feature-map tensor sees, per axis: see the module docstring; ``first`` and
    ``last`` are the exact edges (:class:`_Edge`)."""

    lo: tuple[int, int]
    hi: tuple[int, int]
    jump: tuple[int, int]
    n: tuple[int | None, int | None]
    first: tuple = (_PIXEL, _PIXEL)
    last: tuple = (_PIXEL, _PIXEL)


@dataclass(frozen=True)
class _Unsupported:
    """Stands for a tensor whose field cannot be computed: the layer responsible, and why."""

    layer: str
    reason: str


class _Found(Exception):  # noqa: N818 - control flow, not an error: ends the walk
    def __init__(self, geometry):
        super().__init__()
        self.geometry = geometry


def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else tuple(int(v) for v in value)


def _pad_before(layer, axis: int, n: int | None, k: int, s: int, d: int) -> tuple[int, int | None]:
    """Zeros padded before position 0 on ``axis`` and the output length (TensorFlow's rules)."""
    span = (k - 1) * d + 1
    if layer.padding == "valid":
        return 0, None if n is None else -(-(n - span + 1) // s)
    if s == 1:
        return (span - 1) // 2, n
    if n is None:
        raise ValueError(
            f"Layer {layer.name!r} pads 'same' with stride {s}: where TensorFlow puts the "
            f"padding depends on the input's {_AXES[axis]}, which this model leaves open. "
            "Give the image size: receptive_field(model, layer, input_size=(H, W))."
        )
    out = -(-n // s)
    return max((out - 1) * s + span - n, 0) // 2, out


def _read(edge: _Edge, step: int, before: int, d: int, taps: int, n: int | None,
          low: bool) -> _Edge:
    """The edge of a layer whose position ``i`` reads the positions ``i * step - before + t * d``
    (``t < taps``) of its input (``n`` of them): the first (last) of those that exists."""

    def fn(i: int) -> int:
        a = i * step - before
        b = a + (taps - 1) * d
        if low:
            return edge(a + -(-max(-a, 0) // d) * d)
        over = 0 if n is None else max(b - (n - 1), 0)
        return edge(b - -(-over // d) * d)

    return _Edge(fn)


def _window(layer, g: _Geometry, names) -> _Geometry:
    k = _pair(getattr(layer, names[0]))
    s = _pair(getattr(layer, names[1]) or k)
    d = _pair(getattr(layer, names[2])) if names[2] else (1, 1)
    lo, hi, jump, n, first, last = [], [], [], [], [], []
    for a in range(2):
        p, out = _pad_before(layer, a, g.n[a], k[a], s[a], d[a])
        lo.append(g.lo[a] - p * g.jump[a])
        hi.append(g.hi[a] + ((k[a] - 1) * d[a] - p) * g.jump[a])
        jump.append(g.jump[a] * s[a])
        n.append(out)
        first.append(_read(g.first[a], s[a], p, d[a], k[a], g.n[a], low=True))
        last.append(_read(g.last[a], s[a], p, d[a], k[a], g.n[a], low=False))
    return _Geometry(*map(tuple, (lo, hi, jump, n, first, last)))


def _shift(g: _Geometry, before, after) -> _Geometry:
    """Zeros padded (``before``/``after`` > 0) or rows cropped (< 0) at each axis' ends."""
    n = tuple(None if g.n[a] is None else g.n[a] + before[a] + after[a] for a in range(2))
    lo = tuple(g.lo[a] - before[a] * g.jump[a] for a in range(2))
    hi = tuple(g.hi[a] - before[a] * g.jump[a] for a in range(2))
    first = tuple(_read(g.first[a], 1, before[a], 1, 1, g.n[a], low=True) for a in range(2))
    last = tuple(_read(g.last[a], 1, before[a], 1, 1, g.n[a], low=False) for a in range(2))
    return _Geometry(lo, hi, g.jump, n, first, last)


def _merge(layer, inputs: list) -> _Geometry | _Unsupported:
    first = inputs[0]
    if any(g.jump != first.jump or g.n != first.n for g in inputs[1:]):
        return _Unsupported(layer.name, "its inputs come from feature maps of different strides "
                                        "or sizes")
    lo = tuple(min(g.lo[a] for g in inputs) for a in range(2))
    hi = tuple(max(g.hi[a] for g in inputs) for a in range(2))
    edges = [(_Edge(lambda i, a=a: min(g.first[a](i) for g in inputs)),
              _Edge(lambda i, a=a: max(g.last[a](i) for g in inputs))) for a in range(2)]
    return _Geometry(lo, hi, first.jump, first.n, *zip(*edges))


def _channels_last(layer) -> bool:
    return getattr(layer, "data_format", "channels_last") in ("channels_last", None)


def _apply(op, target, args) -> _Geometry | _Unsupported:
    """The geometry of ``op``'s output from its inputs' (``args``: the op's arguments)."""
    inputs = [a for a in (args[0] if isinstance(args[0], (list, tuple)) else args[:1])]
    bad = next((g for g in inputs if isinstance(g, _Unsupported)), None)
    if bad is not None:
        return bad
    if not all(isinstance(g, _Geometry) for g in inputs) or not inputs:
        return _Unsupported(op.name, "its input is not a feature map")
    if isinstance(op, keras.Model):
        return _walk(op, inputs[0], target)
    kind = type(op).__name__
    if not _channels_last(op):
        return _Unsupported(op.name, f"{kind} with data_format={op.data_format!r}")
    names = next((v for cls, v in WINDOWS.items() if type(op) is cls), None)
    if names is not None:
        return _window(op, inputs[0], names)
    if isinstance(op, keras.layers.ZeroPadding2D):
        (t, b), (left, r) = op.padding
        return _shift(inputs[0], (t, left), (b, r))
    if isinstance(op, keras.layers.Cropping2D):
        (t, b), (left, r) = op.cropping
        return _shift(inputs[0], (-t, -left), (-b, -r))
    if isinstance(op, MERGES):
        return _merge(op, inputs)
    if isinstance(op, POINTWISE) and len(inputs) == 1:
        return inputs[0]
    return _Unsupported(op.name, f"{kind} is not a layer whose receptive field is known here")


def _walk(model: keras.Model, g: _Geometry, target) -> _Geometry | _Unsupported:
    """Push ``g`` through ``model``'s graph; raise :class:`_Found` at ``target``."""

    def run(op):
        def call(*args, **kwargs):
            out = _apply(op, target, args)
            if op is target:
                raise _Found(out)
            return out

        return call

    if isinstance(model, keras.Sequential):
        for layer in model.layers:
            if not isinstance(layer, keras.layers.InputLayer):
                g = run(layer)(g)
        return g
    out = model._run_through_graph([g], operation_fn=run)  # noqa: SLF001 - Keras' graph walker
    return out[0] if isinstance(out, (list, tuple)) else out


def receptive_field(model: keras.Model, layer: LayerRef,
                    input_size: tuple[int, int] | None = None) -> ReceptiveField:
    """The receptive field of the units of ``layer``, computed from the graph.

    Parameters
    ----------
    model
        A Keras model with one image input ``(H, W, C)``, channels last (nested models are
        walked through).
    layer
        A layer with a spatial output: its name (``"outer/inner"`` or ``"inner"``), index or
        object. A nested model stands for its output layer.
    input_size
        ``(H, W)`` of the images; needed only when the model leaves its input size open and a
        layer pads ``"same"`` with a stride above 1 (default: the model's input size).

    Returns
    -------
    ReceptiveField
        ``size``, ``jump`` and ``start`` per axis, :meth:`ReceptiveField.box` (the field) and
        :meth:`ReceptiveField.visible_box` (what a unit near a border really sees).

    Raises
    ------
    ValueError
        For a layer without spatial output, or one behind a layer whose field is unknown
        (the error names that layer), or an open input size that decides the padding.

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((8, 8, 1)),
    ...                       keras.layers.Conv2D(2, 3, strides=2, padding="same", name="c")])
    >>> rf = receptive_field(m, "c")  # TF's SAME: on an even size no zero before row 0
    >>> rf.size, rf.jump, rf.start, rf.map_size
    ((3, 3), (2, 2), (0, 0), (4, 4))
    """
    path = surgery.require_spatial(model, layer)
    shape = tuple(model.inputs[0].shape[1:]) if model.inputs else ()
    if len(shape) != 3:
        raise ValueError(f"Model {model.name!r} takes inputs of shape {shape}; a receptive "
                         "field needs an image input (H, W, C).")
    size = tuple(shape[:2]) if input_size is None else _pair(input_size)
    n = tuple(None if v is None else int(v) for v in size)
    start = _Geometry((0, 0), (0, 0), (1, 1), n)
    try:
        _walk(model, start, path[-1])
    except _Found as found:
        g = found.geometry
    else:  # pragma: no cover - require_spatial found the layer in the graph
        raise ValueError(f"Layer {path[-1].name!r} is not reached from the input of "
                         f"{model.name!r}.")
    name = surgery.path_name(path)
    if isinstance(g, _Unsupported):
        raise ValueError(
            f"Cannot compute the receptive field of {name!r}: it lies behind layer "
            f"{g.layer!r}, and {g.reason}. Supported: convolutions and pooling (2D, any "
            "stride, dilation and padding), ZeroPadding2D, Cropping2D, merges (Add, "
            "Concatenate...), nested models, and layers that act on each position alone."
        )
    return ReceptiveField(
        layer=name,
        size=tuple(g.hi[a] - g.lo[a] + 1 for a in range(2)),
        jump=g.jump,
        start=g.lo,
        map_size=g.n,
        input_size=n,
        edges=tuple(zip(g.first, g.last)),
    )

