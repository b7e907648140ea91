"""Models of the course: pretrained ImageNet models (the seeds' networks from
``keras.applications`` and EfficientNet-Lite0, which works offline) and the course's own
trained CNNs."""

from course_utils.models.imagenet import (
    NAMES,
    SPECS,
    WeightsUnavailableError,
    decode,
    input_size,
    load,
    preprocess,
    weights_cached,
)
from course_utils.models.registry import STANDIN_LABEL, ModelInfo, info, is_standin, register
from course_utils.models.torch_weights import TorchFileError, read_torch_state_dict
from course_utils.models.trained import fashion_cnn, history, shapes_cnn

__all__ = [
    "NAMES", "SPECS", "STANDIN_LABEL", "ModelInfo", "TorchFileError", "WeightsUnavailableError",
    "decode", "fashion_cnn", "history", "info", "input_size", "is_standin", "load", "preprocess",
    "read_torch_state_dict", "register", "shapes_cnn", "weights_cached",
]
