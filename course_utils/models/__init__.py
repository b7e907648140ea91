"""Models of the course: pretrained ImageNet models and the course's own trained CNNs."""

from course_utils.models.registry import STANDIN_LABEL, ModelInfo, info, is_standin, register

__all__ = ["STANDIN_LABEL", "ModelInfo", "info", "is_standin", "register"]
