"""Dataset examples: the image patches of a dataset that excite a channel most (Zeiler & Fergus
2014, the "top 9 activations ... and the corresponding image patches" figure).

:func:`top_patches` streams the dataset once. Per chunk of ``batch_size`` images it runs the
model up to the layer (compiled once per model, layer and input shape), takes for every chosen
channel each image's best position (``reduce="max"``: one patch per image, as in the paper) or
its ``k`` best positions (``reduce="all"``: several patches may come from one image), and merges
them with the ``k`` best kept so far. Only ``channels x k`` candidates and their patches are
held, never the dataset or its activations, so memory is bounded by
``channels x k x patch`` plus one chunk.

The patch of a unit is its receptive field in pixel space
(:func:`~course_utils.features.receptive_field`), clipped at the image border. Every patch of
a layer has the same size, the field's (at most the image's): where the field reaches outside
the image, the patch is filled with ``fill``, by default the pixel value that the model's
preprocessing maps to 0, i.e. what the zero padding of its first layer stands for (black for
the Fashion-MNIST CNN, grey 127 for EfficientNet-Lite0). The image's pixels keep their place in
the field: a field cut at the top is filled above the image's first row.

Ties are broken the same way whatever the batching: a higher value first, then the lower image
index (its position in the stream), then the lower row, then the lower column. How the input is
batched does not change the result (it is re-chunked into ``batch_size`` images); another
``batch_size`` can change the values in their last float32 digits only.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from course_utils import surgery
from course_utils.engine import batching, checks, kernels, spaces, taps
from course_utils.engine.images import as_batch, image_input_shape
from course_utils.features.receptive_field import ReceptiveField, receptive_field
from course_utils.models.registry import info
from course_utils.surgery import LayerRef

REDUCE = ("max", "all")


@dataclass
class TopPatches:
    """The ``k`` strongest units of each channel over a dataset, and their image patches.

    Row ``i`` of every array belongs to ``channels[i]``; within a row, the strongest first.

    Attributes
    ----------
    layer
        The layer's name (``"outer/inner"`` when nested).
    channels
        The channels, in the order asked.
    values
        ``(channels, k)`` activations of the units, highest first.
    images
        ``(channels, k)`` index of each unit's image in the stream (0 = the first image).
    positions
        ``(channels, k, 2)`` row and column of each unit in the layer's feature map.
    boxes
        ``(channels, k, 4)`` the part of the image in each patch: ``(top, left, bottom,
        right)`` in pixels, bottom and right excluded (the field clipped at the border).
    patches
        ``(channels, k, h, w, C)`` pixel-space patches (``[0, pixel_max]``), outside the image
        filled with :attr:`fill`.
    field
        The layer's :class:`~course_utils.features.ReceptiveField`.
    n_images
        How many images the stream held.
    fill, reduce, pixel_max, label
        The fill colour (per channel), the reduction, the model's pixel range, its label.
    """

    layer: str
    channels: list[int]
    values: np.ndarray
    images: np.ndarray
    positions: np.ndarray
    boxes: np.ndarray
    patches: np.ndarray
    field: ReceptiveField
    n_images: int
    fill: np.ndarray
    reduce: str
    pixel_max: float = 1.0
    label: str = ""

    @property
    def k(self) -> int:
        """Patches per channel (fewer than asked when the dataset had fewer candidates)."""
        return int(self.values.shape[1])

    def inside(self, row: int, j: int) -> np.ndarray:
        """Boolean ``(h, w)`` mask of the image's pixels in patch ``j`` of channel row ``row``
        (``False`` where it is filled)."""
        (top, left, bottom, right), (h, w) = self.boxes[row, j], self.patches.shape[2:4]
        y, x = self.positions[row, j]
        field_top, field_left = self.field.box(y, x)[:2]
        oy = h - (bottom - top) if field_top < 0 else 0
        ox = w - (right - left) if field_left < 0 else 0
        mask = np.zeros((h, w), bool)
        mask[oy:oy + bottom - top, ox:ox + right - left] = True
        return mask

    def of(self, channel: int) -> np.ndarray:
        """The patches ``(k, h, w, C)`` of ``channel`` (a channel number, not a row)."""
        if channel not in self.channels:
            raise ValueError(f"Channel {channel} was not searched; searched: {self.channels}.")
        return self.patches[self.channels.index(channel)]


def _top_fn(model: keras.Model, path: tuple, shape: tuple):
    """``(x, channels, per_image, allowed) -> (values, flat positions)``, each ``(N, channels,
    per_image)``, highest first (lower position first on ties), among the positions where
    ``allowed`` (``(h * w,)`` bool) holds; compiled once per model, layer and input shape."""
    mref = weakref.ref(model)

    def build():
        def run(x, channels, per_image, allowed):
            (a,) = taps.forward_until(mref(), x, [path])
            a = tf.gather(a, channels, axis=-1)
            flat = tf.transpose(tf.reshape(a, (tf.shape(a)[0], -1, tf.shape(a)[-1])), (0, 2, 1))
            flat = tf.where(allowed, flat, tf.constant(-np.inf, flat.dtype))
            return tf.math.top_k(flat, k=per_image, sorted=True)

        return kernels.tf_function(run)

    return kernels.compiled(model, "top_patches", build, options=(id(path[-1]),), shape=shape)


def _elements(images) -> Iterator:
    """The stream's elements: an array is one batch; anything else is iterated (a
    ``tf.data.Dataset``, a generator, a list of images or batches); from an ``(images,
    labels, ...)`` tuple the images are taken."""
    if isinstance(images, (np.ndarray, tf.Tensor)):
        yield images
        return
    if isinstance(images, (str, bytes)) or not isinstance(images, Iterable):
        raise TypeError(
            "images must be an array (N, H, W, C) of pixels or an iterable of such batches "
            f"(a tf.data.Dataset, a generator); got {type(images).__name__}."
        )
    for element in images:
        if isinstance(element, (tuple, list)) and element and np.ndim(element[0]) >= 3:
            element = element[0]
        yield element.numpy() if hasattr(element, "numpy") else element


def _chunks(model: keras.Model, images, batch_size: int) -> Iterator[np.ndarray]:
    """Validated float32 pixel-space chunks of exactly ``batch_size`` images (the last one
    smaller), whatever the stream's own batching."""
    buffer: list[np.ndarray] = []
    held = 0
    first_shape = None
    for element in _elements(images):
        if np.size(element) == 0:
            continue
        batch = as_batch(model, element, pixels=True)
        if first_shape is None:
            first_shape = batch.shape[1:]
        elif batch.shape[1:] != first_shape:
            raise ValueError(
                f"All images must have one size: the stream started with {first_shape} and "
                f"then gave {batch.shape[1:]}. Resize them first."
            )
        buffer.append(batch)
        held += len(batch)
        while held >= batch_size:
            stacked = np.concatenate(buffer)
            yield stacked[:batch_size]
            buffer, held = [stacked[batch_size:]], held - batch_size
    if held:
        yield np.concatenate(buffer)


def _patch(image: np.ndarray, box: tuple, side: tuple, fill: np.ndarray) -> tuple:
    """The field ``box`` (unclipped) of ``image`` as a ``side``-sized patch filled with
    ``fill`` outside the image; returns the patch and the clipped box."""
    h, w = image.shape[:2]
    top, left, bottom, right = box
    clipped = (max(top, 0), max(left, 0), min(bottom, h), min(right, w))
    out = np.empty((*side, image.shape[-1]), "float32")
    out[:] = fill
    content = image[clipped[0]:clipped[2], clipped[1]:clipped[3]]
    oy = side[0] - content.shape[0] if top < 0 else 0
    ox = side[1] - content.shape[1] if left < 0 else 0
    out[oy:oy + content.shape[0], ox:ox + content.shape[1]] = content
    return out, clipped


class _Best:
    """The ``k`` best candidates per channel so far, with their patches: the bounded merge."""

    def __init__(self, n_channels: int, k: int, field: ReceptiveField, image_shape: tuple,
                 fill: np.ndarray):
        self.k, self.field, self.fill = k, field, fill
        self.side = tuple(min(s, n) for s, n in zip(field.size, image_shape[:2]))
        self.values = np.zeros((n_channels, 0), "float32")
        self.images = np.zeros((n_channels, 0), "int64")
        self.flat = np.zeros((n_channels, 0), "int64")
        self.patches = np.zeros((n_channels, 0, *self.side, image_shape[2]), "float32")
        self.boxes = np.zeros((n_channels, 0, 4), "int64")

    def merge(self, chunk: np.ndarray, offset: int, values: np.ndarray,
              flat: np.ndarray) -> None:
        """Add the candidates of ``chunk`` (pixel space; its first image is number
        ``offset``): ``values`` and ``flat`` positions ``(b, channels, per_image)``."""
        b, n_channels, per_image = values.shape
        values = values.transpose(1, 0, 2).reshape(n_channels, -1)  # image-major per channel
        flat = flat.transpose(1, 0, 2).reshape(n_channels, -1).astype("int64")
        images = np.broadcast_to(np.repeat(np.arange(offset, offset + b), per_image),
                                 values.shape)
        old = self.values.shape[1]
        all_values = np.concatenate([self.values, values], axis=1)
        all_images = np.concatenate([self.images, images], axis=1)
        all_flat = np.concatenate([self.flat, flat], axis=1)
        order = np.lexsort((all_flat, all_images, -all_values.astype("float64")),
                           axis=-1)[:, :self.k]
        patches = np.empty((n_channels, order.shape[1], *self.patches.shape[2:]), "float32")
        boxes = np.empty((n_channels, order.shape[1], 4), "int64")
        for row, picks in enumerate(order):
            for j, src in enumerate(picks):
                if src < old:
                    patches[row, j], boxes[row, j] = self.patches[row, src], self.boxes[row, src]
                else:
                    y, x = divmod(int(all_flat[row, src]), self.field.map_size[1])
                    patches[row, j], boxes[row, j] = _patch(
                        chunk[all_images[row, src] - offset], self.field.box(y, x), self.side,
                        self.fill)
        take = np.take_along_axis
        self.values, self.images = take(all_values, order, 1), take(all_images, order, 1)
        self.flat, self.patches, self.boxes = take(all_flat, order, 1), patches, boxes


def _allowed(field: ReceptiveField, image_shape: tuple, whole_field: bool) -> np.ndarray:
    """``(h * w,)``: the positions that may be picked (with ``whole_field``: those whose field
    lies inside the image)."""
    h, w = field.map_size
    if not whole_field:
        return np.ones(h * w, bool)
    ok = [np.array([field.start[a] + i * field.jump[a] >= 0 and field.start[a]
                    + i * field.jump[a] + field.size[a] <= image_shape[a] for i in range(n)])
          for a, n in enumerate((h, w))]
    if not (ok[0].any() and ok[1].any()):
        raise ValueError(
            f"No unit of {field.layer!r} has its whole receptive field ({field.size[0]} x "
            f"{field.size[1]} px) inside a {image_shape[0]} x {image_shape[1]} image; use "
            "whole_field=False or larger images."
        )
    return (ok[0][:, None] & ok[1][None, :]).ravel()


def _fill(model: keras.Model, fill, depth: int) -> np.ndarray:
    if fill is None:  # the pixel the model's preprocessing maps to 0
        return spaces.to_pixels(model, np.zeros((1, 1, 1, depth), "float32"))[0, 0, 0]
    arr = checks.finite(np.broadcast_to(np.asarray(fill, "float32"), (depth,)).copy(), "fill",
                        "a pixel value or one per channel")
    return arr


def top_patches(
    model: keras.Model,
    layer: LayerRef,
    images,
    channels: int | Sequence[int],
    k: int = 9,
    *,
    reduce: str = "max",
    batch_size: int | None = None,
    preprocess: bool = True,
    fill: float | Sequence[float] | None = None,
    whole_field: bool = False,
    progress: bool = True,
) -> TopPatches:
    """The ``k`` image patches of a dataset that excite each channel most, in one streamed pass.

    Parameters
    ----------
    model
        A Keras model with one image input (nested models are fine).
    layer
        A layer with a spatial output (name, ``"outer/inner"``, index or object).
    images
        Pixel-space images (``[0, pixel_max]``): an array ``(N, H, W, C)``, or any iterable
        of such batches or of single images (a ``tf.data.Dataset``, batched or not, a
        generator); elements ``(images, labels)`` are read for their images. All of one size.
    channels
        The channels to search (one or several).
    k
        Patches per channel (fewer when the dataset holds fewer candidates).
    reduce
        ``"max"``: each image offers its best position (one patch per image, the paper's
        figure); ``"all"``: its ``k`` best positions (several patches may share an image).
    batch_size
        Images per compiled call (default: :func:`course_utils.engine.batching.
        auto_batch_size`); the stream is re-chunked to it.
    preprocess
        Apply ``info(model).preprocess`` to the images first (``False``: they are already the
        model's input, and then also what the patches show).
    fill
        Pixel value outside the image (default: the pixel that preprocessing maps to 0).
    whole_field
        Consider only units whose whole receptive field lies inside the image (units at
        the border also respond to the padding around the image).
    progress
        Show a progress bar over the images (``tqdm.auto``).

    Returns
    -------
    TopPatches
        Values, image indices, positions, boxes and patches per channel.

    Raises
    ------
    ValueError
        For an unknown layer (the valid names are listed), a channel out of range, ``k < 1``,
        an unknown ``reduce``, an empty dataset, images of the wrong shape or with NaN.

    Examples
    --------
    >>> import keras, numpy as np
    >>> m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(
    ...     1, 3, padding="same", use_bias=False, kernel_initializer="ones", name="c")])
    >>> x = np.zeros((5, 8, 8, 1), "float32"); x[3, 2, 5] = 1.0  # one bright pixel in image 3
    >>> r = top_patches(m, "c", x, channels=0, k=2, progress=False)
    >>> r.images[0].tolist(), r.patches.shape  # 9 units see it; image 3 first, one per image
    ([3, 0], (1, 2, 3, 3, 1))
    """
    k = checks.integer(k, "k", example="patches per channel, e.g. 9")
    reduce = checks.choice(reduce, "reduce", REDUCE)
    path = surgery.require_spatial(model, layer)
    name = surgery.path_name(path)
    n_channels = int(surgery.output_shape(path[-1])[-1])
    chans = checks.indices(channels, n_channels, "channel", name)
    if batch_size is not None:
        batch_size = batching.check_batch_size(batch_size)
    meta = info(model)
    depth = image_input_shape(model)[2]
    fill_value = _fill(model, fill, depth)
    per_image = 1 if reduce == "max" else k
    best = None
    seen = 0
    total = len(images) if isinstance(images, (np.ndarray, tf.Tensor)) else None
    if batch_size is None:
        h, w, _ = image_input_shape(model)
        batch_size = batching.auto_batch_size((h or 224, w or 224))
    bar = tqdm(total=total, desc=f"top patches of {name}", unit="img", disable=not progress,
               leave=False)
    with bar:
        for chunk in _chunks(model, images, batch_size):
            if best is None:
                field = receptive_field(model, path[-1], input_size=chunk.shape[1:3])
                best = _Best(len(chans), k, field, chunk.shape[1:], fill_value)
                fn = _top_fn(model, path, chunk.shape[1:])
                allowed = _allowed(field, chunk.shape[1:3], whole_field)
                kk = tf.constant(min(per_image, int(allowed.sum())))
                allowed = tf.constant(allowed)
            x = np.asarray(meta.preprocess(chunk.copy()), "float32") if preprocess else chunk
            values, flat = fn(tf.constant(x), tf.constant(chans, tf.int32), kk, allowed)
            best.merge(chunk, seen, values.numpy(), flat.numpy())
            seen += len(chunk)
            bar.update(len(chunk))
    if best is None:
        raise ValueError("images held no image: give an array (N, H, W, C) or an iterable that "
                         "yields at least one image.")
    positions = np.stack(np.divmod(best.flat, best.field.map_size[1]), axis=-1)
    return TopPatches(
        layer=name, channels=chans.tolist(), values=best.values, images=best.images,
        positions=positions, boxes=best.boxes, patches=best.patches, field=best.field,
        n_images=seen, fill=np.asarray(fill_value, "float32"), reduce=reduce,
        pixel_max=float(meta.pixel_max), label=meta.label,
    )
