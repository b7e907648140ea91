"""course_utils: the companion package of the course "What CNNs See"."""

import os
import sys

# Keep TensorFlow's C++ start-up chatter (CUDA probing on CPU machines) out of the lessons.
# TF_CPP_MIN_LOG_LEVEL=0, set before this import, shows it again.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow's oneDNN CPU kernels, which TensorFlow turns on by itself only on CPUs with
# AVX-512 VNNI or AMX. On a CPU without them they make backward passes, which every gradient
# method and feature visualization runs, faster (measured in README, "Speed, measured");
# gradients agree to float32 round-off. Models trained with them differ from the default
# kernels' by round-off, so every lesson check is asserted with a margin that holds for models
# trained either way. Takes effect only if TensorFlow is not imported yet (import
# course_utils first); TF_ENABLE_ONEDNN_OPTS=0 before that keeps them off.
# `python -m course_utils check` reports whether they are on.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"


def _start_tensorflow_quietly() -> None:
    """Import TensorFlow and look for its devices once, with this process's standard error
    (file descriptor 2) pointed at /dev/null meanwhile.

    TensorFlow 2.21's C++ start-up lines ("All log messages before absl::InitializeLog() ...",
    "oneDNN custom operations are on ...", "Could not find cuda drivers ...", "failed call to
    cuInit ...") ignore ``TF_CPP_MIN_LOG_LEVEL`` and land in a lesson's first output as a red
    block. They say nothing a student needs (``python -m course_utils check`` reports the
    kernels and the GPUs). A Python exception still propagates, after stderr is restored.
    """
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0" or "tensorflow" in sys.modules:
        return
    try:
        saved = os.dup(2)
    except OSError:  # no standard error to protect
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe happens here, not at import
    finally:
        os.dup2(saved, 2)
        os.close(saved)


_start_tensorflow_quietly()
