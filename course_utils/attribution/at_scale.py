"""Explain a whole dataset: stream a ``tf.data.Dataset`` through a method, shard by shard.

:func:`explain_dataset` cuts the dataset into shards of ``shard_size`` consecutive images,
computes each shard's maps with a method of :data:`~course_utils.attribution.METHODS` (the same
function, options and results as calling it directly) and writes them to ``out`` as it goes
(:mod:`course_utils.shards`: atomic ``.npz`` files and a manifest; an interrupted run resumes
where it stopped). Under a ``tf.distribute.Strategy`` the method's compiled calls run per
replica (:mod:`course_utils.engine.replicas`): ``MirroredStrategy`` over the GPUs of one
machine, ``MultiWorkerMirroredStrategy`` over machines.

The dataset yields images, ``(images, labels)``, ``(images, labels, masks)`` or dicts with keys
``"image"``, ``"label"``, ``"mask"``; batched or not (shards are re-cut from single images).
The images must be preprocessed for the model, as for the methods.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from course_utils import shards
from course_utils.engine import batching, checks, inputs, replicas
from course_utils.engine.images import model_input_shape

logger = logging.getLogger(__name__)

#: Methods with host-side work that a strategy does not distribute, and what it is.
HOST_SIDE = {
    "lime": "its segmentation and linear fits run on the host, one image at a time; only its "
            "masked forward passes run per replica",
    "occlusion": "its window masks are made on the host; its forward passes run per replica",
}
DEFAULT_SHARD_SIZE = 256
_KEYS = ("image", "label", "mask")


@dataclass
class Shard:
    """One shard of the dataset: consecutive images, and their labels and masks if given."""

    index: int
    start: int
    images: np.ndarray
    labels: np.ndarray | None
    masks: np.ndarray | None

    @property
    def fingerprint(self) -> str:
        """SHA-256 (16 hex digits) of the images: notices a dataset that changed order."""
        return hashlib.sha256(np.ascontiguousarray(self.images).tobytes()).hexdigest()[:16]

    @property
    def positions(self) -> np.ndarray:
        """Positions of the shard's images in the dataset."""
        return np.arange(self.start, self.start + len(self.images))


def parts(element) -> dict:
    """``{"image": ..., "label": ..., "mask": ...}`` of one dataset element (spec or value).

    Examples
    --------
    >>> sorted(parts(("x", "y")).items()), parts({"images": "x"})
    ([('image', 'x'), ('label', 'y')], {'image': 'x'})
    """
    if isinstance(element, dict):
        alias = {"images": "image", "labels": "label", "masks": "mask"}
        named = {alias.get(k, k): v for k, v in element.items()}
        unknown = set(named) - set(_KEYS)
        if "image" not in named or unknown:
            raise ValueError(
                f"A dataset of dicts must have the key 'image' (and optionally 'label', "
                f"'mask'); got keys {sorted(element)}."
            )
        return named
    if isinstance(element, (tuple, list)):
        if not 1 <= len(element) <= 3:
            raise ValueError(
                f"The dataset yields tuples of {len(element)} parts; expected images, "
                "(images, labels) or (images, labels, masks)."
            )
        return dict(zip(_KEYS, element, strict=False))
    return {"image": element}


def check_dataset(model: keras.Model, dataset) -> bool:
    """Validate the dataset's element spec against the model; True when it is batched.

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2)])
    >>> check_dataset(m, tf.data.Dataset.from_tensor_slices(np.zeros((3, 4, 4, 1))).batch(2))
    True
    """
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(
            f"dataset must be a tf.data.Dataset, got {type(dataset).__name__}; wrap arrays with "
            "tf.data.Dataset.from_tensor_slices(images) (or (images, labels))."
        )
    spec = parts(dataset.element_spec)["image"]
    want = model_input_shape(model)
    shape = tuple(spec.shape)
    if len(shape) not in (3, 4):
        raise ValueError(
            f"The dataset yields images of shape {shape}; expected (H, W, C) or batches "
            f"(N, H, W, C) for model {model.name!r}, whose input is {want}."
        )
    got = shape[-3:]
    if any(g is not None and w is not None and g != w for g, w in zip(got, want, strict=True)):
        raise ValueError(
            f"The dataset yields images of shape {got} but model {model.name!r} takes {want}; "
            "resize and preprocess them in the dataset (dataset.map) first."
        )
    return len(shape) == 4


def iter_shards(model: keras.Model, dataset: tf.data.Dataset, shard_size: int) -> Iterator[Shard]:
    """The dataset cut into shards of ``shard_size`` consecutive images (the last may be
    smaller), as NumPy arrays; labels given one-hot become class indices.

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2)])
    >>> ds = tf.data.Dataset.from_tensor_slices((np.zeros((5, 4, 4, 1)), np.arange(5)))
    >>> [(s.index, s.labels.tolist()) for s in iter_shards(m, ds.batch(4), 2)]
    [(0, [0, 1]), (1, [2, 3]), (2, [4])]
    """
    if check_dataset(model, dataset):
        dataset = dataset.unbatch()
    start = 0
    for i, element in enumerate(dataset.batch(shard_size).as_numpy_iterator()):
        named = parts(element)
        labels = named.get("label")
        if labels is not None:
            labels = np.asarray(labels)
            labels = labels.argmax(axis=-1) if labels.ndim == 2 else labels.astype("int64")
        images = np.asarray(named["image"])
        yield Shard(i, start, images, labels, named.get("mask"))
        start += len(images)


def dataset_size(dataset: tf.data.Dataset) -> int | None:
    """Number of images of an unbatched dataset of known cardinality, else None.

    Examples
    --------
    >>> ds = tf.data.Dataset.from_tensor_slices(np.zeros((5, 4, 4, 1)))
    >>> dataset_size(ds), dataset_size(ds.batch(2)), dataset_size(ds.filter(lambda x: True))
    (5, None, None)
    """
    if len(parts(dataset.element_spec)["image"].shape) == 4:
        return None
    n = int(dataset.cardinality())
    return n if n >= 0 else None


def model_identity(model: keras.Model) -> dict:
    """What identifies a model in a manifest: name, shapes, parameter count and a hash of its
    weights (another training of the same architecture is another model).

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2)], name="tiny")
    >>> {k: v for k, v in model_identity(m).items() if k != "weights_sha256"}
    {'name': 'tiny', 'input_shape': [4, 4, 1], 'output_shape': [2], 'n_params': 34}
    """
    digest = hashlib.sha256()
    for w in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(w)).tobytes())
    return {
        "name": model.name,
        "input_shape": list(model_input_shape(model)),
        "output_shape": list(model.outputs[0].shape[1:]),
        "n_params": int(model.count_params()),
        "weights_sha256": digest.hexdigest()[:16],
    }


def is_writer(strategy: tf.distribute.Strategy | None) -> bool:
    """True unless this process is a non-chief worker of a multi-worker strategy (the chief,
    or worker 0 of a cluster without a chief, writes).

    Examples
    --------
    >>> is_writer(None), is_writer(tf.distribute.get_strategy())
    (True, True)
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    jobs = resolver.cluster_spec().as_dict()
    if "chief" in jobs:
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and int(resolver.task_id) == 0


def check_targets(targets) -> str | int | None:
    """``targets`` of a dataset run: None, ``"label"`` or one class index.

    Examples
    --------
    >>> check_targets(None), check_targets("label"), check_targets(np.int64(2))
    (None, 'label', 2)
    """
    if targets is None or (isinstance(targets, str) and targets == "label"):
        return targets
    if isinstance(targets, (int, np.integer)) and not isinstance(targets, bool):
        return int(targets)
    raise ValueError(
        f"targets must be None (the predicted class), 'label' (the dataset's labels) or one "
        f"class index, got {targets!r}."
    )


def _shard_targets(model: keras.Model, shard: Shard, targets, batch_size: int) -> np.ndarray:
    """The class explained for each image of the shard (the predicted one for ``None``)."""
    if isinstance(targets, str):
        if shard.labels is None:
            raise ValueError("targets='label' needs a dataset that yields (images, labels).")
        targets = shard.labels
    return inputs.resolve_targets(model, inputs.as_batch(model, shard.images), targets, batch_size)


def shard_maps(model: keras.Model, shard: Shard, method: str, targets, batch_size: int,
               options: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(maps, targets)`` of one shard: the method called on its images, with the targets
    resolved first (so that they can be stored with the maps).

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2)])
    >>> shard = Shard(0, 0, np.ones((2, 4, 4, 1), "float32"), None, None)
    >>> maps, t = shard_maps(m, shard, "saliency", 1, 8, {})
    >>> maps.shape, t.tolist()
    ((2, 4, 4), [1, 1])
    """
    from course_utils.attribution import METHODS

    t = _shard_targets(model, shard, targets, batch_size)
    return METHODS[method](model, shard.images, t, batch_size=batch_size, **options), t


def warn_host_side(method: str, strategy: tf.distribute.Strategy | None) -> bool:
    """Log (and return True) when ``method`` has host-side work that ``strategy``'s replicas
    do not share (:data:`HOST_SIDE`).

    Examples
    --------
    >>> warn_host_side("lime", None), warn_host_side("saliency", None)
    (False, False)
    """
    if strategy is None or strategy.num_replicas_in_sync == 1 or method not in HOST_SIDE:
        return False
    logger.warning("%s under %s: %s.", method, type(strategy).__name__, HOST_SIDE[method])
    return True


def global_batch_size(model: keras.Model, batch_size: int | None) -> int:
    """``batch_size`` rows per step over all replicas; ``None``: the automatic size per device
    times the number of replicas.

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2)])
    >>> global_batch_size(m, 32), global_batch_size(m, None) >= 1
    (32, True)
    """
    if batch_size is not None:
        return batching.check_batch_size(batch_size)
    shape = model_input_shape(model)
    per_device = batching.auto_batch_size(tuple(s or 224 for s in shape))
    return per_device * replicas.n_replicas()


def _progress_bar(total: int | None, desc: str, show: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not show)


def explain_dataset(
    model: keras.Model,
    dataset: tf.data.Dataset,
    method: str,
    *,
    out: str | os.PathLike,
    targets=None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    strategy: tf.distribute.Strategy | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    **options,
) -> shards.Sharded:
    """Maps of every image of ``dataset`` with ``method``, written to ``out`` shard by shard.

    Each shard file ``out/shard-00000.npz``... holds ``maps`` (float32 ``(n, H, W)``, exactly
    what ``METHODS[method](model, images, targets, **options)`` returns for the shard),
    ``targets`` (the class each map explains), ``positions`` (of the images in the dataset)
    and ``images_sha256``. Run it again after an interruption: finished shards are kept (their
    images are checked against the dataset's), only the others are computed. Other settings
    into the same ``out`` raise :class:`~course_utils.shards.ManifestMismatch`.

    Parameters
    ----------
    model
        A Keras classifier with one image input. Under a strategy, load or build it inside
        ``strategy.scope()`` so that its weights are mirrored on every device. Replica copies
        that differ (batch-norm statistics of a model trained under the strategy) are first
        set to the first replica's, with a log line.
    dataset
        A ``tf.data.Dataset`` of preprocessed images (see the module docstring for the element
        forms), in a fixed order: do not shuffle it, a resumed run must see the same images.
    method
        A name in ``attribution.METHODS``.
    out
        Folder for ``manifest.json`` and the shards (created; an existing file is an error).
        Under ``MultiWorkerMirroredStrategy`` it must be a folder every worker sees; the chief
        writes.
    targets
        ``None`` (each image's predicted class), ``"label"`` (the dataset's labels) or one
        class index.
    shard_size
        Images per shard file: the granularity of progress and of resuming.
    strategy
        A ``tf.distribute.Strategy`` or ``None`` (the default device). The method's compiled
        calls run per replica; host-side work (:data:`HOST_SIDE`) stays on the host and a log
        line says so. The maps do not depend on the strategy.
    batch_size
        Rows per compiled step over all replicas (each replica gets its share); ``None``:
        the automatic size per device times the number of replicas. Results do not depend on
        it, so it is not part of the manifest.
    progress
        Show a progress bar (``tqdm.auto``) over the images.
    **options
        The method's options (``n_samples``, ``layer``...), recorded in the manifest.

    Returns
    -------
    Sharded
        ``.load("maps")`` (all maps, ``(N, H, W)``), iteration shard by shard, and
        ``.computed``: the shards computed by this call.

    Examples
    --------
    >>> import keras, numpy as np, tempfile, tensorflow as tf
    >>> m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2)])
    >>> ds = tf.data.Dataset.from_tensor_slices(np.random.rand(5, 4, 4, 1).astype("float32"))
    >>> run = explain_dataset(m, ds, "saliency", out=tempfile.mkdtemp() + "/sal",
    ...                       shard_size=2, progress=False)
    >>> run.load("maps").shape, run.computed
    ((5, 4, 4), [0, 1, 2])
    """
    from course_utils.attribution import METHODS

    name = checks.choice(method, "method", tuple(METHODS))
    targets = check_targets(targets)
    shard_size = checks.integer(shard_size, "shard_size", example="images per file, e.g. 256")
    check_dataset(model, dataset)
    settings = {
        "method": name,
        "options": shards.jsonable(options),
        "targets": targets,
        "shard_size": shard_size,
        "n_images": dataset_size(dataset),
        "model": model_identity(model),
    }
    folder = shards.ShardFolder(out, {"kind": "maps", "settings": settings},
                                writer=is_writer(strategy))

    def compute(shard: Shard, bs: int) -> dict:
        maps, t = shard_maps(model, shard, name, targets, bs, options)
        return {"maps": maps, "targets": t}

    warn_host_side(name, strategy)
    return run_shards(model, dataset, folder, compute, strategy=strategy, batch_size=batch_size,
                      desc=name, progress=progress)


def run_shards(
    model: keras.Model,
    dataset: tf.data.Dataset,
    folder: shards.ShardFolder,
    compute: Callable[[Shard, int], dict],
    *,
    strategy: tf.distribute.Strategy | None,
    batch_size: int | None,
    desc: str,
    progress: bool,
) -> shards.Sharded:
    """The loop of every dataset run: for each shard not yet in ``folder``, ``compute(shard,
    batch_size)`` (under ``strategy``) and write its arrays with the shard's ``positions`` and
    ``images_sha256``; finished shards are checked against the dataset's images, not
    recomputed.

    Examples
    --------
    >>> import keras, tempfile
    >>> m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2)])
    >>> folder = shards.ShardFolder(tempfile.mkdtemp() + "/sums",
    ...                             {"kind": "sums", "settings": {"shard_size": 2}})
    >>> ds = tf.data.Dataset.from_tensor_slices(np.ones((3, 4, 4, 1), "float32"))
    >>> run = run_shards(m, ds, folder, lambda s, bs: {"sum": s.images.sum(axis=(1, 2, 3))},
    ...                  strategy=None, batch_size=None, desc="sums", progress=False)
    >>> run.load("sum").tolist(), run.computed
    ([16.0, 16.0, 16.0], [0, 1])
    """
    shard_size = folder.manifest["settings"]["shard_size"]
    aligned = replicas.align_copies(model, strategy)
    if aligned:
        logger.warning(
            "The replicas' copies of %d variable(s) of %s differed (%s): Keras updates "
            "batch-norm moving statistics on each replica separately in training. Set them to "
            "the first replica's, the values a run without the strategy and model.save use.",
            len(aligned), model.name, ", ".join(aligned[:4]) + (" ..." if len(aligned) > 4 else ""))
    computed: list[int] = []
    n_shards = 0
    with replicas.distributed(strategy):
        bs = global_batch_size(model, batch_size)
        bar = _progress_bar(folder.manifest["settings"].get("n_images"), desc, progress)
        for shard in iter_shards(model, dataset, shard_size):
            n_shards += 1
            if folder.done(shard.index):
                _check_same_images(folder, shard)
            else:
                arrays = compute(shard, bs)
                folder.write(shard.index, **arrays, positions=shard.positions,
                             images_sha256=np.array(shard.fingerprint))
                computed.append(shard.index)
            bar.update(len(shard.images))
        bar.close()
    if n_shards == 0:
        raise ValueError("The dataset is empty: there is nothing to compute.")
    folder.finish(n_shards)
    return shards.Sharded(folder, computed)


def _check_same_images(folder: shards.ShardFolder, shard: Shard) -> None:
    """A finished shard on disk must hold the images the dataset yields now."""
    with np.load(folder.path(shard.index), allow_pickle=False) as data:
        stored = str(data["images_sha256"])
    if stored != shard.fingerprint:
        raise ValueError(
            f"Shard {shard.index} in {folder.out} was computed from other images than the "
            "dataset yields now (is it shuffled, or did its files change?). Give the dataset "
            "in a fixed order, or delete the folder / choose another out."
        )
