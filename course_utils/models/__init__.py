"""Models of the course: pretrained ImageNet models and the course's own trained CNNs."""

from course_utils.models.imagenet import (
    SPECS,
    WeightsUnavailableError,
    decode,
    input_size,
    load,
    preprocess,
    weights_cached,
)
from course_utils.models.registry import STANDIN_LABEL, ModelInfo, info, is_standin, register
from course_utils.models.trained import fashion_cnn, history, shapes_cnn

__all__ = [
    "SPECS", "STANDIN_LABEL", "ModelInfo", "WeightsUnavailableError", "decode", "fashion_cnn",
    "history", "info", "input_size", "is_standin", "load", "preprocess", "register",
    "shapes_cnn", "weights_cached",
]
