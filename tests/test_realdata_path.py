"""The lessons' internet-only path, run offline.

Lesson 10 fine-tunes ``keras.applications`` networks on Food-101 and cats vs dogs through a
``tf.data`` pipeline that preprocesses the images for the network inside a ``map``.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from course_utils import models

# --------------------------------------------------------------------------------------------
# Suspect (a): preprocessing inside a tf.data map
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", models.NAMES)
def test_preprocess_inside_a_tf_data_map_equals_the_numpy_preprocessing(name):
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 5, 5, 3)).astype("float32")
    ds = tf.data.Dataset.from_tensors(pixels).map(lambda x: models.preprocess(name, x))
    mapped = next(iter(ds)).numpy()
    expected = models.preprocess(name, pixels)
    assert mapped.dtype == np.float32 and mapped.shape == pixels.shape
    np.testing.assert_allclose(mapped, expected, rtol=1e-6, atol=1e-4)
    assert not np.allclose(mapped, pixels)  # it did map into the network's input space
