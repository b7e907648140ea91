"""transfer.head: training the head on a frozen base's features computed once."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from course_utils.models import transfer


def _base(extra=None):
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inp)
    x = keras.layers.BatchNormalization(name="bn")(x)  # frozen: inference mode in both paths
    if extra is not None:
        x = extra(x)
    return keras.Model(inp, x, name="base")


def _trained(net, fit_on, x, y):
    net.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    keras.utils.set_random_seed(1)
    net.fit(fit_on, y, epochs=3, batch_size=4, shuffle=False, verbose=0)
    return net.get_layer("logits").get_weights()


def test_head_on_features_computed_once_trains_the_same_weights_as_fit_on_images():
    rng = np.random.default_rng(0)
    x, y = rng.random((8, 8, 8, 3)).astype("float32"), rng.integers(0, 3, 8)
    base = _base()
    start = [w.copy() for w in transfer.transfer_model(base, 3, dropout=0.0).get_weights()]
    whole = transfer.transfer_model(base, 3, dropout=0.0)
    whole.set_weights(start)
    expected = _trained(whole, x, x, y)  # the ordinary path: fit on the images

    net = transfer.transfer_model(base, 3, dropout=0.0)
    net.set_weights(start)
    got = _trained(transfer.head(net), base.predict(x, verbose=0), x, y)
    assert not np.allclose(got[0], start[-2])  # it learned ...
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, atol=1e-5)  # ... what fit on the images learns
    # the head's layers are the model's: the model predicts with the trained head
    np.testing.assert_allclose(net.predict(x, verbose=0), whole.predict(x, verbose=0), atol=1e-5)


@pytest.mark.parametrize("case, match", [
    ("not_sequential", "Expected a transfer_model"),
    ("trainable", "is trainable"),
    ("dropout", "act only in training"),
])
def test_head_refuses_a_model_whose_features_cannot_be_computed_once(case, match):
    if case == "not_sequential":
        model = _base()
    elif case == "trainable":
        model = transfer.transfer_model(_base(), 2, train_base=True)
    else:
        model = transfer.transfer_model(_base(keras.layers.Dropout(0.5, name="drop")), 2)
    with pytest.raises(ValueError, match=match):
        transfer.head(model)
