"""course_utils.engine.kernels: one compiled function per model, and no false alarm from
TensorFlow's retracing detector when a lesson explains many models in turn."""

import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from course_utils import attribution, features


def _net(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(2)(x))


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _retracing_warnings(work) -> tuple[list[str], list]:
    records = _Records()
    tf.get_logger().addHandler(records)
    try:
        results = [work(_net(seed)) for seed in range(8)]
    finally:
        tf.get_logger().removeHandler(records)
    return [m for m in records.messages if "retracing" in m], results


def test_explaining_many_models_does_not_warn_of_retracing():
    """Each model has its own compiled functions, traced once per input shape: that is not
    retracing. TensorFlow counts traces per Python code object unless told otherwise; a lesson
    that explains eight models (the sanity checks randomize copies) must not print its warning
    ('triggered tf.function retracing')."""
    x = np.random.default_rng(0).uniform(size=(2, 8, 8, 3)).astype("float32")
    warned, maps = _retracing_warnings(lambda net: attribution.saliency(net, x, 0))
    assert not warned
    assert len({m.tobytes() for m in maps}) == 8  # eight different models were explained


def test_visualizing_many_models_does_not_warn_of_retracing():
    """The same for feature visualization (its step, render and scoring graphs), activations
    and DeepDream."""
    photo = np.random.default_rng(1).uniform(size=(16, 16, 3)).astype("float32")

    def work(net):
        vis = features.visualize(net, "conv", [0], steps=2, size=16, progress=False)
        acts = features.activations(net, photo, ["conv"])
        dream = features.deepdream(net, photo, ["conv"], octaves=1, steps=2, progress=False)
        return vis.images, acts, dream

    warned, results = _retracing_warnings(work)
    assert not warned
    assert len({r[0].tobytes() for r in results}) == 8
