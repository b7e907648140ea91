"""course_utils: the companion package of the course "What CNNs See"."""

import os

# Keep TensorFlow's C++ start-up chatter (CUDA probing on CPU machines) out of the lessons.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
