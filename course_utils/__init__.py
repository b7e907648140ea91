"""course_utils: the companion package of the course "What CNNs See"."""

import os

# Keep TensorFlow's C++ start-up chatter (CUDA probing on CPU machines) out of the lessons.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow's oneDNN CPU kernels (TF_ENABLE_ONEDNN_OPTS=1, set before TensorFlow is imported)
# are opt-in: TensorFlow turns them on by itself only on CPUs with AVX-512 VNNI or AMX. On a
# 2-core CPU without them backward passes take 1.6-1.8x less time with them (benchmarks/), but
# the course's models trained with them come out different by round-off, and on a clean CI
# run two quick-mode lesson checks failed with those models (LIME's best superpixel on the
# object, Grad-CAM's pointing game >= 0.9 on 24 images). `python -m course_utils check` says
# whether they are on.

__version__ = "0.1.0"
