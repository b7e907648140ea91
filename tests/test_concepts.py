"""TCAV (course_utils.concepts) against constructed ground truth and analytic derivatives."""

import keras
import numpy as np
import pytest

from course_utils import concepts
from course_utils.data import synthetic


def _brightness_model(sign: float = 1.0) -> keras.Model:
    """A 1x1 "conv" that copies brightness, GAP, and a classifier whose class 0 logit is
    ``sign * brightness`` and class 1 logit is its negation: ground truth for the concept
    "bright"."""
    inp = keras.Input((8, 8, 1))
    c = keras.layers.Conv2D(1, 1, use_bias=False, name="copy")
    h = c(inp)
    d = keras.layers.Dense(2, use_bias=False, name="logits")
    out = keras.layers.Softmax()(d(keras.layers.GlobalAveragePooling2D()(h)))
    model = keras.Model(inp, out)
    c.kernel.assign(np.ones((1, 1, 1, 1), "float32"))
    d.kernel.assign(np.array([[sign, -sign]], "float32"))
    return model


def _sets(seed: int = 0, k: int = 4, n: int = 24):
    rng = np.random.default_rng(seed)
    bright = rng.uniform(0.6, 1.0, (n, 8, 8, 1))
    randoms = [rng.uniform(0.0, 1.0, (n, 8, 8, 1)) for _ in range(k)]
    return rng, bright, randoms


def test_directional_derivative_is_the_analytic_one():
    # logit_0 = mean over 64 positions of the copied pixel: d logit_0 / d h = 1/64 everywhere
    model = _brightness_model()
    x = np.random.default_rng(1).uniform(size=(5, 8, 8, 1))
    v = np.zeros(64, "float32")
    v[[0, 9]] = [0.6, 0.8]
    d = concepts.directional_derivatives(model, x, 0, "copy", [v, -v])
    np.testing.assert_allclose(d[0], (0.6 + 0.8) / 64, rtol=1e-5)
    np.testing.assert_allclose(d[1], -(0.6 + 0.8) / 64, rtol=1e-5)
    d1 = concepts.directional_derivatives(model, x, 1, "copy", [v])  # class 1 is -brightness
    np.testing.assert_allclose(d1[0], -(0.6 + 0.8) / 64, rtol=1e-5)


def test_tcav_finds_the_concept_the_class_uses_and_its_opposite():
    model = _brightness_model()
    rng, bright, randoms = _sets()
    images = rng.uniform(0, 1, (20, 8, 8, 1))
    up = concepts.tcav(model, images, 0, layer="copy", concept_images=bright,
                       random_images=randoms, concept="bright", progress=False)
    down = concepts.tcav(model, images, 1, layer="copy", concept_images=bright,
                         random_images=randoms, concept="bright", progress=False)
    assert up.accuracies.min() == 1.0  # brightness separates the sets perfectly
    assert up.score == 1.0 and down.score == 0.0
    assert "bright" in str(up) and "class 0" in str(up)


def test_cav_points_toward_the_concept():
    model = _brightness_model()
    _, bright, randoms = _sets(seed=3)
    cav = concepts.learn_cav(model, "copy", bright, randoms[0], concept="bright", seed=0)
    assert cav.accuracy == 1.0 and cav.layer == "copy"
    assert np.isclose(np.linalg.norm(cav.vector), 1.0, atol=1e-5)
    # Along "every pixel brighter": over 12 draws of data and seed, 0.78-0.87 cosine with the
    # uniform direction and 88-100% of the components positive (a linear SVM fitted by SGD on
    # 16 + 16 examples in 64 dimensions is not the exact normal).
    assert cav.vector.sum() / np.sqrt(64) > 0.65
    assert (cav.vector > 0).mean() > 0.75
    again = concepts.learn_cav(model, "copy", bright, randoms[0], concept="bright", seed=0)
    np.testing.assert_array_equal(cav.vector, again.vector)  # seeded: reproducible


def test_single_sigmoid_unit_class_one_is_the_negation():
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(2, 3, activation="relu", name="c")(inp)
    out = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(h))
    model = keras.Model(inp, out)
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1))
    v = np.random.default_rng(1).normal(size=(1, 72))
    d0 = concepts.directional_derivatives(model, x, 0, "c", v)
    d1 = concepts.directional_derivatives(model, x, 1, "c", v)
    np.testing.assert_allclose(d1, -d0, rtol=1e-6)
    assert np.abs(d0).max() > 0


def test_tcav_score_counts_positive_derivatives():
    np.testing.assert_array_equal(concepts.tcav_score([[1.0, -2.0, 0.0, 3.0], [-1, -1, -1, -1]]),
                                  [0.5, 0.0])


def test_with_watermark_pastes_only_the_watermark():
    plain = synthetic.shapes(3, seed=0).images
    marked = synthetic.with_watermark(plain, 2)
    mask, _ = synthetic._watermark(2)
    assert np.array_equal(marked[:, ~mask], plain[:, ~mask])
    assert set(np.unique(marked[:, mask])) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="class index 0..2"):
        synthetic.with_watermark(plain, 3)
    with pytest.raises(ValueError, match=r"\(N, 64, 64, 3\)"):
        synthetic.with_watermark(plain[0], 0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"target": 2}, ValueError, r"valid targets are 0..1"),
        ({"target": 0.5}, TypeError, "one class index"),
        ({"random_images": "one batch"}, ValueError, "list of several random sets"),
        ({"random_images": "two sets"}, ValueError, "at least 3 random sets"),
        ({"alpha": 1.5}, ValueError, r"alpha must be in \(0, 1\)"),
        ({"layer": "nope"}, ValueError, "nope"),
    ],
)
def test_bad_input_is_explained(kwargs, error, match):
    model = _brightness_model()
    rng, bright, randoms = _sets(k=3, n=6)
    args = {"target": 0, "layer": "copy", "concept_images": bright, "random_images": randoms,
            "alpha": 0.05}
    args.update(kwargs)
    if args["random_images"] == "one batch":
        args["random_images"] = np.concatenate(randoms)
    elif args["random_images"] == "two sets":
        args["random_images"] = randoms[:2]
    target = args.pop("target")
    with pytest.raises(error, match=match):
        concepts.tcav(model, bright, target, progress=False, **args)


def test_too_few_examples_and_wrong_vector_length():
    model = _brightness_model()
    _, bright, randoms = _sets()
    with pytest.raises(ValueError, match="at least 3 images"):
        concepts.learn_cav(model, "copy", bright[:2], randoms[0])
    with pytest.raises(ValueError, match="learn the CAV at the same layer"):
        concepts.directional_derivatives(model, bright, 0, "copy", [np.ones(10)])


def test_tcav_matrix_marks_exactly_the_significant_scores():
    import matplotlib

    matplotlib.use("Agg")
    from course_utils import concept_plots

    ax = concept_plots.tcav_matrix([[0.91, 0.5, 0.02]], [[0.001, 0.049, 0.2]], rows=["c"],
                                   cols=["a", "b", "d"], alpha=0.05, label="a label")
    assert [t.get_text() for t in ax.texts] == ["0.91*", "0.50*", "0.02"]
    assert "a label" in [t.get_text() for t in ax.figure.texts]
    with pytest.raises(ValueError, match=r"expected \(1, 3\)"):
        concept_plots.tcav_matrix([[0.9, 0.1]], [[0.1, 0.2]], rows=["c"], cols=["a", "b", "d"])


def test_each_cav_is_fitted_once_across_classes_and_concepts(monkeypatch):
    fits = []

    class Counting(concepts.SGDClassifier):
        def fit(self, x, y):
            fits.append(len(x))
            return super().fit(x, y)

    model = _brightness_model()
    rng, bright, randoms = _sets(k=3)
    dark = rng.uniform(0.0, 0.4, bright.shape)
    concepts._FITS.clear()
    first = concepts.tcav(model, bright, 0, layer="copy", concept_images=bright,
                          random_images=randoms, progress=False)
    monkeypatch.setattr(concepts, "SGDClassifier", Counting)
    again = concepts.tcav(model, dark, 1, layer="copy", concept_images=bright,
                          random_images=randoms, progress=False)
    assert fits == []  # the same concept and random sets for another class: nothing new
    concepts.tcav(model, bright, 0, layer="copy", concept_images=dark, random_images=randoms,
                  progress=False)
    assert len(fits) == 3  # another concept: its 3 CAVs; the 3 random CAVs are reused
    concepts._FITS.clear()
    fresh = concepts.tcav(model, dark, 1, layer="copy", concept_images=bright,
                          random_images=randoms, progress=False)
    assert len(fits) == 9  # no memo: every CAV fitted again
    np.testing.assert_array_equal(fresh.scores, again.scores)  # the memo changes nothing
    np.testing.assert_array_equal(fresh.random_scores, again.random_scores)
    assert fresh.p_value == again.p_value and first.concept == fresh.concept
