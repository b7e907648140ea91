"""course_utils: the companion package of the course "What CNNs See"."""

import os

# Keep TensorFlow's C++ start-up chatter (CUDA probing on CPU machines) out of the lessons.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow's oneDNN CPU kernels, which TensorFlow turns on by itself only on CPUs with
# AVX-512 VNNI or AMX. Measured on a 2-core CPU without them (benchmarks/): backward passes,
# which every gradient method and feature visualization runs, take 1.6-1.8x less time
# (MobileNetV2, VGG16); forward passes are unchanged; gradients agree to float32 round-off.
# Models trained with them differ from the default kernels' by round-off, so every lesson
# check is asserted with a margin that holds for models trained either way. Takes effect
# only if TensorFlow is not imported yet (import course_utils first); TF_ENABLE_ONEDNN_OPTS=0
# before that keeps them off. `python -m course_utils check` reports whether they are on.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
