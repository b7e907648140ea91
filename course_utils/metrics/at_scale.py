"""Score the explanations of a whole dataset: deletion, insertion, pointing game, shard by shard.

:func:`evaluate_dataset` is :func:`course_utils.attribution.explain_dataset` for the metrics:
the same shards, manifest, resuming and strategy. The maps come either from a method (computed
per shard, as ``explain_dataset`` would) or from the folder ``explain_dataset`` wrote (read
shard by shard, with the targets they explain; the shards must match the dataset's images).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from course_utils import shards
from course_utils.attribution import at_scale
from course_utils.engine import checks
from course_utils.metrics.deletion import DEFAULT_STEPS, curves
from course_utils.metrics.localization import energy_in_mask, pointing_game

#: What :func:`evaluate_dataset` computes; the last two need masks from the dataset.
METRICS = ("deletion", "insertion", "pointing_game", "energy_in_mask")
NEEDS_MASKS = ("pointing_game", "energy_in_mask")
#: Rows (image x step) per compiled call of the curves, per replica, when ``batch_size=None``.
CURVE_ROWS = 128


def _check_metrics(metrics) -> tuple[str, ...]:
    names = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    if not names:
        raise ValueError(f"metrics is empty; choose from {METRICS}.")
    for name in names:
        checks.choice(name, "each metric", METRICS)
    return names


def _maps_source(maps, method_options: dict | None) -> tuple[dict, shards.Sharded | None]:
    """``(what the manifest records about the maps, the maps' run or None)``."""
    from course_utils.attribution import METHODS

    if isinstance(maps, str) and maps in METHODS:
        return {"method": maps, "options": shards.jsonable(method_options or {})}, None
    if method_options:
        raise ValueError("method_options applies when maps is a method name, not a folder.")
    if isinstance(maps, shards.Sharded):
        run = shards.Sharded.open(maps.out)
    elif isinstance(maps, (str, os.PathLike)) and os.path.isdir(maps):
        run = shards.Sharded.open(maps)
    else:
        raise ValueError(
            f"maps must be a method name ({', '.join(map(repr, METHODS))}) or the folder "
            f"written by attribution.explain_dataset; got {maps!r}."
        )
    if run.manifest.get("kind") != "maps":
        raise ValueError(f"{run.out} holds {run.manifest.get('kind')!r}, not maps.")
    run.n_shards  # noqa: B018 - raises for a run that did not finish
    return {"from": run.manifest["settings"]}, run


def evaluate_dataset(
    model: keras.Model,
    dataset: tf.data.Dataset,
    maps,
    *,
    out: str | os.PathLike,
    metrics: str | Sequence[str] = ("deletion", "insertion"),
    targets=None,
    method_options: dict | None = None,
    shard_size: int | None = None,
    strategy: tf.distribute.Strategy | None = None,
    batch_size: int | None = None,
    steps: int = DEFAULT_STEPS,
    baseline="blur",
    blur_sigma: float | None = None,
    absolute: bool = False,
    seed: int = 0,
    tolerance: int = 0,
    part: str = "positive",
    progress: bool = True,
) -> shards.Sharded:
    """Per-image scores of the maps of every image of ``dataset``, written to ``out`` by shard.

    Each shard file holds, per image, ``deletion_auc`` and ``deletion_curve`` (``(n, steps +
    1)``), ``insertion_auc`` and ``insertion_curve``, ``pointing_game``, ``energy_in_mask``
    (those asked for), with ``targets`` and ``positions``: the values
    :func:`~course_utils.metrics.deletion`, :func:`~course_utils.metrics.insertion`,
    :func:`~course_utils.metrics.pointing_game` and :func:`~course_utils.metrics.energy_in_mask`
    return for the shard. Resuming, manifest and strategy as in
    :func:`course_utils.attribution.explain_dataset`.

    Parameters
    ----------
    model
        The classifier the maps explain.
    dataset
        A ``tf.data.Dataset`` of preprocessed images, ``(images, labels)`` or ``(images,
        labels, masks)`` (masks are needed for ``"pointing_game"`` and ``"energy_in_mask"``),
        in a fixed order.
    maps
        A method name (maps computed per shard with ``method_options``) or the folder (or
        result) of ``explain_dataset`` on the same dataset: its maps and targets are read, and
        ``shard_size`` is taken from it.
    out
        Folder for the manifest and the score shards.
    metrics
        One or several of :data:`METRICS`.
    targets
        For a method: ``None`` (predicted class), ``"label"`` or one class index. For a folder
        of maps: must be ``None`` (the targets the maps explain are used).
    method_options
        Options of the method (``n_samples``...), when ``maps`` is a method name.
    shard_size
        Images per shard (default 256, or the maps folder's).
    strategy
        A ``tf.distribute.Strategy``: the method's and the curves' compiled calls run per
        replica.
    batch_size
        Rows per compiled step over all replicas, for the method and the curves; ``None``:
        automatic for the method, 128 rows per replica for the curves.
    steps, baseline, blur_sigma, absolute, seed
        Options of the deletion and insertion curves (:func:`course_utils.metrics.deletion`).
    tolerance
        Pixels of tolerance of the pointing game.
    part
        ``"positive"`` or ``"absolute"`` mass for ``energy_in_mask``.
    progress
        Show a progress bar over the images.

    Returns
    -------
    Sharded
        ``.load("deletion_auc")`` etc.; :func:`summary` gives the means.

    Examples
    --------
    >>> import keras, numpy as np, tempfile, tensorflow as tf
    >>> m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2, activation="softmax")])
    >>> ds = tf.data.Dataset.from_tensor_slices(np.random.rand(3, 4, 4, 1).astype("float32"))
    >>> run = evaluate_dataset(m, ds, "saliency", out=tempfile.mkdtemp() + "/s", steps=4,
    ...                        baseline="black", progress=False)
    >>> run.load("deletion_auc").shape, sorted(summary(run))
    ((3,), ['deletion_auc', 'insertion_auc'])
    """
    names = _check_metrics(metrics)
    source, maps_run = _maps_source(maps, method_options)
    if maps_run is not None:
        if targets is not None:
            raise ValueError("targets must be None with a folder of maps: the targets the maps "
                             "explain are used.")
        stored = maps_run.manifest["settings"]["shard_size"]
        if shard_size not in (None, stored):
            raise ValueError(f"The maps in {maps_run.out} are in shards of {stored} images; "
                             f"leave shard_size=None (or give {stored}).")
        shard_size = stored
    targets = at_scale.check_targets(targets)
    shard_size = checks.integer(at_scale.DEFAULT_SHARD_SIZE if shard_size is None
                                else shard_size, "shard_size", example="images per file")
    at_scale.check_dataset(model, dataset)
    if any(n in NEEDS_MASKS for n in names) and "mask" not in at_scale.parts(
            dataset.element_spec):
        raise ValueError(f"{[n for n in names if n in NEEDS_MASKS]} need region masks: give a "
                         "dataset of (images, labels, masks).")
    curve_options = {"steps": steps, "baseline": baseline, "blur_sigma": blur_sigma,
                     "absolute": absolute, "seed": seed}
    settings = {
        "metrics": list(names),
        "maps": source,
        "targets": targets,
        "options": shards.jsonable({**curve_options, "tolerance": tolerance, "part": part}),
        "shard_size": shard_size,
        "n_images": at_scale.dataset_size(dataset),
        "model": at_scale.model_identity(model),
    }
    folder = shards.ShardFolder(out, {"kind": "scores", "settings": settings},
                                writer=at_scale.is_writer(strategy))
    if maps_run is None:
        at_scale.warn_host_side(maps, strategy)
    def compute(shard: at_scale.Shard, bs: int) -> dict:
        if maps_run is None:
            m, t = at_scale.shard_maps(model, shard, maps, targets, bs, method_options or {})
        else:
            stored = maps_run.folder.read(shard.index)
            if str(stored["images_sha256"]) != shard.fingerprint:
                raise ValueError(f"Shard {shard.index} of the maps in {maps_run.out} was "
                                 "computed from other images than this dataset yields.")
            m, t = stored["maps"], stored["targets"]
        rows = batch_size or CURVE_ROWS * (strategy.num_replicas_in_sync if strategy else 1)
        scores = {"targets": t}
        for mode in ("deletion", "insertion"):
            if mode in names:
                c = curves(model, shard.images, m, t, mode=mode, batch_size=rows,
                           **curve_options)
                scores[f"{mode}_auc"], scores[f"{mode}_curve"] = c.auc, c.scores
        if "pointing_game" in names:
            scores["pointing_game"] = pointing_game(m, shard.masks, tolerance=tolerance)
        if "energy_in_mask" in names:
            scores["energy_in_mask"] = energy_in_mask(m, shard.masks, part=part)
        return scores

    return at_scale.run_shards(model, dataset, folder, compute, strategy=strategy,
                               batch_size=batch_size, desc="scores", progress=progress)


def summary(run: shards.Sharded) -> dict[str, float]:
    """Mean over the dataset of every per-image score of an :func:`evaluate_dataset` run
    (deletion AUC: lower is better; insertion AUC, pointing game, energy: higher is better).

    Examples
    --------
    >>> import keras, tempfile, tensorflow as tf
    >>> m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2, activation="softmax")])
    >>> ds = tf.data.Dataset.from_tensor_slices((np.ones((2, 4, 4, 1), "float32"), [0, 1],
    ...                                          np.eye(4, dtype=bool)[None].repeat(2, 0)))
    >>> run = evaluate_dataset(m, ds, "saliency", steps=2,
    ...                        out=tempfile.mkdtemp() + "/s", metrics="pointing_game",
    ...                        progress=False)
    >>> 0.0 <= summary(run)["pointing_game"] <= 1.0
    True
    """
    names = run.manifest["settings"]["metrics"]
    keys = [f"{n}_auc" if n in ("deletion", "insertion") else n for n in names]
    return {k: float(np.mean(run.load(k))) for k in keys}
