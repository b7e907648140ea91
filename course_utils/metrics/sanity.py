"""Sanity checks for saliency maps (Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim 2018).

**Model randomization (cascading).** Re-initialize the model's layers one after the other, from
the output layer down to the first convolution, and explain the same images with the same targets
after each step. A map that explains *the model* must change as the model is destroyed; a map
that stays the same (high rank correlation with the original) shows the image - edges, the
object's outline - whatever the weights are, and is "flagged": its picture cannot be trusted to
say what the model learned.

**Data randomization** (optional, :func:`shuffled_label_model`): train the same architecture on
permuted labels; the model memorizes noise, and a faithful map of it should not look like the map
of the real model.

Both compare maps with the Spearman rank correlation of :func:`~course_utils.metrics.agreement.
rank_correlation`, of absolute values (importance) and of signed values.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import keras
import numpy as np

from course_utils import surgery
from course_utils.engine import inputs, scoring
from course_utils.metrics._checks import check_maps
from course_utils.metrics.agreement import rank_correlation
from course_utils.models import registry

#: A method whose mean |map| rank correlation with the original stays above this value once
#: every layer is randomized is flagged as failing the check.
THRESHOLD = 0.3

Method = Callable[..., np.ndarray]


# --------------------------------------------------------------------------------------------
# Randomizing a copy of the model
# --------------------------------------------------------------------------------------------


def copy_model(model: keras.Model) -> keras.Model:
    """An independent copy of ``model`` (same architecture and weights, same course info).

    Examples
    --------
    >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> c = copy_model(m)
    >>> c is m, bool(np.all(c.get_weights()[0] == m.get_weights()[0]))
    (False, True)
    """
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return registry.register(clone, registry.info(model))


def weighted_layers(model: keras.Model) -> list[tuple[str, keras.layers.Layer]]:
    """``(name, layer)`` of every layer that holds weights, in forward order, nested models
    entered (their own layers are listed, not the container)."""
    out = []
    for path, layer in surgery.iter_layers(model):
        if isinstance(layer, keras.Model) or not layer.weights:
            continue
        out.append((surgery.path_name(path), layer))
    return out


def block_stages(model: keras.Model) -> list[list[str]]:
    """The weighted layers grouped by network block, top block first: the stages of a cascading
    randomization that proceeds one block at a time (``layers=`` of
    :func:`cascading_randomization`).

    A layer belongs to the block its name starts with (``block6a_expand_conv`` and
    ``block6d_project_bn`` to ``block6``, ``block5_conv1`` to ``block5``); a layer outside the
    ``blockN`` scheme (``stem_conv``, ``top_bn``, ``predictions``, ``fc1``) to the part of its
    name before the first underscore. Consecutive layers of one block form one stage.

    Examples
    --------
    >>> inp = keras.Input((8, 8, 3))
    >>> x = keras.layers.Conv2D(4, 3, name="block1_conv1")(inp)
    >>> x = keras.layers.Conv2D(4, 3, name="block1_conv2")(x)
    >>> x = keras.layers.Conv2D(4, 3, name="block2_conv1")(x)
    >>> out = keras.layers.Dense(2, name="predictions")(keras.layers.Flatten()(x))
    >>> block_stages(keras.Model(inp, out))
    [['predictions'], ['block2_conv1'], ['block1_conv1', 'block1_conv2']]
    """
    stages: list[tuple[str, list[str]]] = []
    for name, _ in weighted_layers(model):
        short = name.split("/")[-1]
        found = re.match(r"block\d+", short)
        block = found.group(0) if found else short.split("_")[0]
        if stages and stages[-1][0] == block:
            stages[-1][1].append(name)
        else:
            stages.append((block, [name]))
    return [names for _, names in reversed(stages)]


def _initializer(layer: keras.layers.Layer, variable, seed: int):
    """The layer's own initializer for ``variable`` (``kernel_initializer`` for ``kernel``...),
    re-seeded; Glorot-uniform (matrices) or zeros (vectors) when the layer names none."""
    name = variable.path.split("/")[-1] if hasattr(variable, "path") else variable.name
    init = getattr(layer, f"{name}_initializer", None)
    if init is None:
        if len(variable.shape) >= 2:
            return keras.initializers.GlorotUniform(seed=seed)
        return keras.initializers.Zeros()
    init = keras.initializers.get(init)
    cfg = init.get_config()
    if "seed" in cfg:
        cfg["seed"] = seed
    return type(init).from_config(cfg)


def randomize_layer(layer: keras.layers.Layer, seed: int = 0) -> None:
    """Re-initialize every weight of ``layer`` in place with its own initializers (seeded).

    Examples
    --------
    >>> d = keras.layers.Dense(3); d.build((None, 4))
    >>> before = d.kernel.numpy().copy()
    >>> randomize_layer(d, seed=1)
    >>> bool(np.any(d.kernel.numpy() != before))
    True
    """
    for k, v in enumerate(layer.weights):
        init = _initializer(layer, v, seed * 1000 + k)
        v.assign(np.asarray(init(tuple(v.shape), dtype=v.dtype)))


# --------------------------------------------------------------------------------------------
# Cascading randomization
# --------------------------------------------------------------------------------------------


@dataclass
class SanityResult:
    """Maps and correlations of each method at each stage of the cascading randomization.

    Attributes
    ----------
    stages
        ``"original"``, then the name of each layer as it is randomized (top layer first); stage
        ``s`` has the top ``s`` weighted layers randomized.
    maps
        ``{method: float32 (S, N, H, W)}`` maps at each stage.
    correlation
        ``{method: (S, N)}`` Spearman correlation of ``|map|`` with the original ``|map|``.
    correlation_signed
        ``{method: (S, N)}`` the same for the signed maps.
    targets
        int ``(N,)``: the classes explained (the original model's, kept at every stage).
    threshold
        The flagging threshold (default :data:`THRESHOLD`).
    """

    stages: list[str]
    maps: dict[str, np.ndarray]
    correlation: dict[str, np.ndarray]
    correlation_signed: dict[str, np.ndarray]
    targets: np.ndarray
    threshold: float = THRESHOLD
    methods: list[str] = field(default_factory=list)

    def mean_correlation(self, method: str, signed: bool = False) -> np.ndarray:
        """Mean correlation over images at each stage, ``(S,)``.

        A map that became constant (e.g. an all-zero Grad-CAM of a random model) has no
        ordering left: its undefined (NaN) correlation counts as 0, "nothing in common".
        """
        corr = (self.correlation_signed if signed else self.correlation)[method]
        return np.nan_to_num(corr, nan=0.0).mean(axis=1)

    def final(self, method: str, signed: bool = False) -> float:
        """Mean correlation once every chosen layer is random (see :meth:`mean_correlation`)."""
        return float(self.mean_correlation(method, signed)[-1])

    def flagged(self, method: str) -> bool:
        """True when ``method``'s |map| still correlates above ``threshold`` with its original
        after all layers are randomized: it fails the model-randomization check."""
        return self.final(method) > self.threshold

    def summary(self) -> dict[str, dict[str, float]]:
        """``{method: {"final": ..., "final_signed": ..., "flagged": ...}}``."""
        return {
            m: {"final": self.final(m), "final_signed": self.final(m, signed=True),
                "flagged": self.flagged(m)}
            for m in self.methods
        }


def _resolve_methods(methods) -> dict[str, Method]:
    """``{name: callable}`` from names, callables, or a dict whose values are either."""
    from course_utils import attribution

    if isinstance(methods, str) or callable(methods):
        methods = [methods]
    if isinstance(methods, Mapping):
        pairs = list(methods.items())
    else:
        pairs = [(m if isinstance(m, str) else getattr(m, "__name__", "method"), m)
                 for m in methods]
    out: dict[str, Method] = {}
    for name, spec in pairs:
        if isinstance(spec, str):
            if spec not in attribution.METHODS:
                raise ValueError(
                    f"Unknown attribution method {spec!r}; choose from "
                    f"{sorted(attribution.METHODS)} or pass a callable."
                )
            spec = attribution.METHODS[spec]
        if not callable(spec):
            raise TypeError(f"Method {name!r} must be a method name or a callable, got {spec!r}.")
        out[name] = spec
    if not out:
        raise ValueError("Give at least one attribution method.")
    return out


def _stages(model: keras.Model, layers) -> list[tuple[str, list[keras.layers.Layer]]]:
    """``[(stage name, [layers])]`` in randomization order; see :func:`cascading_randomization`."""
    available = weighted_layers(model)
    if not available:
        raise ValueError(f"Model {model.name!r} has no layers with weights to randomize.")
    if layers is None:
        groups: list[list[tuple[str, keras.layers.Layer]]] = []
        for name, layer in available:
            if isinstance(layer, keras.layers.BatchNormalization) and groups:
                groups[-1].append((name, layer))
            else:
                groups.append([(name, layer)])
        return [("+".join(n.split("/")[-1] for n, _ in g), [la for _, la in g])
                for g in reversed(groups)]
    by_name = {name: layer for name, layer in available}
    by_name.update({layer.name: layer for _, layer in available})
    order = []
    for entry in layers:
        refs = [entry] if isinstance(entry, str) else list(entry)
        missing = [r for r in refs if r not in by_name]
        if missing or not refs:
            raise ValueError(
                f"Layer(s) {missing or entry!r} have no weights to randomize; layers with "
                f"weights: {[name for name, _ in available]}."
            )
        order.append(("+".join(refs), [by_name[r] for r in refs]))
    return order


def cascading_randomization(
    model: keras.Model,
    images,
    methods,
    targets=None,
    *,
    options: Mapping[str, dict] | None = None,
    layers: Sequence[str | Sequence[str]] | None = None,
    seed: int = 0,
    threshold: float = THRESHOLD,
    batch_size: int = 32,
) -> SanityResult:
    """Cascading model randomization of Adebayo et al. (2018), for one or several methods.

    A copy of ``model`` is made (``model`` itself is never changed); its weighted layers are
    re-initialized with their own initializers, one more at each stage, from the output layer
    down to the first; after each stage every method explains ``images`` for the **same
    targets** as the original model. Each stage's maps are compared with the original maps by
    the Spearman rank correlation (of absolute values and of signed values).

    Parameters
    ----------
    model
        The trained model.
    images
        ``(N, H, W, C)`` preprocessed images.
    methods
        Attribution method names of ``course_utils.attribution.METHODS``, callables with its
        signature ``f(model, images, targets, **options) -> (N, H, W)``, or a dict
        ``{name: callable}``.
    targets
        ``None`` (the original model's predicted classes), one class or one per image.
    options
        ``{method name: keyword options}`` passed to that method (e.g. fewer LIME samples).
    layers
        The stages: names of weighted layers to randomize, in order; an entry may be a list of
        names randomized together. Default: every weighted layer, top (output) first, with each
        ``BatchNormalization`` randomized together with the layer it normalizes (a stage is a
        block such as ``"conv4+conv4_bn"``).
    seed
        Seed of the re-initialization.
    threshold
        Flag a method whose final mean |map| correlation stays above this.

    Returns
    -------
    SanityResult

    Examples
    --------
    >>> inp = keras.Input((8, 8, 3))
    >>> x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    >>> out = keras.layers.Dense(2, name="head")(keras.layers.GlobalAveragePooling2D()(x))
    >>> res = cascading_randomization(keras.Model(inp, out), np.random.rand(2, 8, 8, 3),
    ...                               ["saliency"])
    >>> res.stages, res.correlation["saliency"].shape
    (['original', 'head', 'conv'], (3, 2))
    """
    fns = _resolve_methods(methods)
    options = dict(options or {})
    unknown = set(options) - set(fns)
    if unknown:
        raise ValueError(f"options given for methods that are not checked: {sorted(unknown)}.")
    x = inputs.as_batch(model, images)
    t = inputs.resolve_targets(model, x, targets, batch_size)
    clone = copy_model(model)
    order = _stages(clone, layers)
    stages = ["original"] + [name for name, _ in order]
    per_stage: dict[str, list[np.ndarray]] = {name: [] for name in fns}
    from tqdm.auto import tqdm

    for s in tqdm(range(len(stages)), desc="Randomizing layers", leave=False):
        if s > 0:
            for k, layer in enumerate(order[s - 1][1]):
                randomize_layer(layer, seed=(seed + s) * 100 + k)
        for name, fn in fns.items():
            with warnings.catch_warnings():
                # Random models trip IG's completeness warning; it is not what is checked here.
                warnings.simplefilter("ignore", UserWarning)
                maps = fn(clone, x, t, **options.get(name, {}))
            per_stage[name].append(check_maps(maps, x.shape[:3], what=f"maps of {name!r}"))

    all_maps = {name: np.stack(v) for name, v in per_stage.items()}
    corr, corr_signed = {}, {}
    for name, m in all_maps.items():
        corr[name] = np.stack([rank_correlation(m[0], ms, absolute=True) for ms in m])
        corr_signed[name] = np.stack([rank_correlation(m[0], ms) for ms in m])
    return SanityResult(stages=stages, maps=all_maps, correlation=corr,
                        correlation_signed=corr_signed, targets=t, threshold=float(threshold),
                        methods=list(fns))


# --------------------------------------------------------------------------------------------
# Data randomization
# --------------------------------------------------------------------------------------------


def shuffled_label_model(
    model: keras.Model,
    images,
    labels,
    *,
    epochs: int = 2,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> keras.Model:
    """The data-randomization check's model: ``model``'s architecture, freshly initialized and
    trained on ``images`` with **randomly permuted** ``labels``.

    It can only memorize; whatever its maps show is not a learned concept. Keep ``images``
    small (a thousand) and ``epochs`` low: this trains on the CPU.

    Examples
    --------
    >>> m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2, activation="softmax")])
    >>> r = shuffled_label_model(m, np.random.rand(8, 4, 4, 1), np.arange(8) % 2, epochs=1)
    >>> r is m
    False
    """
    x = inputs.as_batch(model, images)
    y = np.asarray(labels)
    if y.shape != (len(x),):
        raise ValueError(f"Expected one label per image ({len(x)}), got shape {y.shape}.")
    head = scoring.head(model)
    n_classes = 2 if head.binary else head.n_outputs
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        raise TypeError(f"labels must be class indices 0..{n_classes - 1}, got dtype {y.dtype}.")
    bad = np.flatnonzero(~np.isin(y, np.arange(n_classes)))
    if bad.size:
        raise ValueError(
            f"label {y[bad[0]]} (image {bad[0]}) is not one of the model's class indices "
            f"0..{n_classes - 1}; {bad.size} label(s) are outside them. Pass one class index "
            "per image."
        )
    y = y.astype("int64")
    keras.utils.set_random_seed(seed)
    clone = keras.models.clone_model(model)  # fresh weights from the layers' initializers
    for _, layer in weighted_layers(clone):
        randomize_layer(layer, seed=seed)
    permuted = np.random.default_rng(seed).permutation(y)
    head = scoring.head(clone)
    probs = head.activation in scoring.PROBABILITY_ACTIVATIONS
    loss = (keras.losses.BinaryCrossentropy(from_logits=not probs) if head.binary
            else keras.losses.SparseCategoricalCrossentropy(from_logits=not probs))
    clone.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss)
    clone.fit(x, permuted, epochs=int(epochs), batch_size=batch_size, verbose=0, shuffle=True)
    return registry.register(clone, registry.info(model))
