"""The networks the benchmarks can time (``--model``): how to build each, its preprocessing, and
how the result tables name it.

The defaults (MobileNetV2 for attributions, VGG16 for feature visualization) have random weights,
so that nothing is downloaded and old results stay reproducible; ``efficientnet_lite0`` is the
course's real ImageNet network, loaded with :func:`course_utils.models.load` from the cache
(``COURSE_DATA_DIR``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras

RANDOM = "RANDOM WEIGHTS (weights=None; timing does not need trained weights)"
REAL = "real ImageNet weights (course_utils.models.load)"
RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class BenchModel:
    """One network a benchmark can run on."""

    name: str
    title: str  # as the table header names it
    weights: str  # RANDOM or REAL
    build: Callable[[], keras.Model]
    preprocess: Callable  # pixels in [0, 255] -> model input
    feature_layers: tuple = ()  # shallow, middle, deep (feature visualization)
    feature_size: int = 224  # feature visualization's default picture size

    def results(self, benchmark: str, default: str) -> Path:
        """``results/<benchmark>.txt`` for the benchmark's default model, else
        ``results/<benchmark>_<model>.txt``."""
        suffix = "" if self.name == default else f"_{self.name}"
        return RESULTS / f"{benchmark}{suffix}.txt"


def _mobilenet_v2() -> keras.Model:
    from course_utils.models import registry

    model = keras.applications.MobileNetV2(weights=None)
    registry.register(model, registry.ModelInfo(
        name="mobilenet_v2", preprocess=keras.applications.mobilenet_v2.preprocess_input,
        pixel_max=255.0, standin=True))
    return model


def _vgg16_base() -> keras.Model:
    return keras.applications.VGG16(weights=None, include_top=False, input_shape=(None, None, 3))


def _lite0() -> keras.Model:
    from course_utils import models

    return models.load("efficientnet_lite0")


def _lite0_preprocess(pixels):
    from course_utils.models import efficientnet_lite

    return efficientnet_lite.preprocess_input(pixels)


MODELS = {
    m.name: m for m in (
        BenchModel("mobilenet_v2", "MobileNetV2", RANDOM, _mobilenet_v2,
                   keras.applications.mobilenet_v2.preprocess_input),
        BenchModel("vgg16", "VGG16 (include_top=False)", RANDOM, _vgg16_base,
                   keras.applications.vgg16.preprocess_input,
                   feature_layers=("block1_conv2", "block3_conv1", "block5_conv1"),
                   feature_size=128),
        # The layers lesson 03 shows for Lite0 as shallow / middle / deep (ReLU6 outputs).
        BenchModel("efficientnet_lite0", "EfficientNet-Lite0", REAL, _lite0, _lite0_preprocess,
                   feature_layers=("stem_activation", "block4a_expand_activation",
                                   "block6b_expand_activation")),
    )
}


def choose(names: tuple[str, ...], default: str) -> dict:
    """``add_argument`` keywords for a ``--model`` option over ``names``."""
    return dict(choices=names, default=default,
                help=f"network to time (default {default}; "
                     + ", ".join(f"{n}: {MODELS[n].weights.split(' (')[0]}" for n in names) + ")")
