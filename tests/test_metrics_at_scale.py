"""Scoring the maps of a whole dataset: equal to the metrics called directly, resumable."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import conv_gap_model, square_dataset

from course_utils import attribution, metrics, shards
from course_utils.attribution import explain_dataset
from course_utils.metrics import at_scale, evaluate_dataset

ALL = ("deletion", "insertion", "pointing_game", "energy_in_mask")
CURVES = {"steps": 4, "baseline": "grey"}


@pytest.fixture(scope="module")
def model():
    return conv_gap_model(size=24)


@pytest.fixture(scope="module")
def data():
    return square_dataset(7, seed=5)


def dataset(data):
    return tf.data.Dataset.from_tensor_slices(data)


def direct(model, x, maps, masks, targets=None):
    return {
        "deletion_auc": metrics.deletion(model, x, maps, targets, **CURVES).auc,
        "insertion_auc": metrics.insertion(model, x, maps, targets, **CURVES).auc,
        "pointing_game": metrics.pointing_game(maps, masks),
        "energy_in_mask": metrics.energy_in_mask(maps, masks),
    }


def test_scores_of_a_method_equal_the_metrics_called_directly(model, data, tmp_path):
    x, _, masks = data
    run = evaluate_dataset(model, dataset(data), "gradcam", out=tmp_path / "s", metrics=ALL,
                           shard_size=3, progress=False, **CURVES)
    assert run.computed == [0, 1, 2]
    want = direct(model, x, attribution.gradcam(model, x), masks)
    for key, value in want.items():
        np.testing.assert_allclose(run.load(key), value, rtol=1e-5, atol=1e-6, err_msg=key)
    assert run.load("deletion_curve").shape == (7, 5)
    assert metrics.summary(run) == pytest.approx({k: float(np.mean(v)) for k, v in want.items()})


def test_scores_of_a_maps_folder_use_its_maps_and_targets(model, data, tmp_path):
    x, y, masks = data
    maps_run = explain_dataset(model, dataset(data), "saliency", out=tmp_path / "maps",
                               targets="label", shard_size=4, progress=False)
    run = evaluate_dataset(model, dataset(data), maps_run.out, out=tmp_path / "s",
                           metrics=ALL, progress=False, **CURVES)
    assert run.manifest["settings"]["shard_size"] == 4  # taken from the maps
    want = direct(model, x, maps_run.load("maps"), masks, y)
    for key, value in want.items():
        np.testing.assert_allclose(run.load(key), value, rtol=1e-5, atol=1e-6, err_msg=key)
    np.testing.assert_array_equal(run.load("targets"), y)
    with pytest.raises(ValueError, match="shards of 4 images"):
        evaluate_dataset(model, dataset(data), maps_run, out=tmp_path / "t", shard_size=3,
                         progress=False)
    with pytest.raises(ValueError, match="targets must be None"):
        evaluate_dataset(model, dataset(data), maps_run, out=tmp_path / "t", targets="label",
                         progress=False)
    other = square_dataset(7, seed=6)
    with pytest.raises(ValueError, match="other images"):
        evaluate_dataset(model, dataset(other), maps_run, out=tmp_path / "u", progress=False)


def test_interrupted_scoring_resumes_only_missing_shards(model, data, tmp_path, monkeypatch):
    real = at_scale.curves
    calls = []
    fail = [True]

    def failing(*args, **kwargs):
        calls.append(len(args[1]))
        if fail[0] and len(calls) == 3:  # shard 0's deletion and insertion, shard 1's deletion
            raise RuntimeError("interrupted")
        return real(*args, **kwargs)

    monkeypatch.setattr(at_scale, "curves", failing)
    out = tmp_path / "s"
    with pytest.raises(RuntimeError, match="interrupted"):
        evaluate_dataset(model, dataset(data), "saliency", out=out, shard_size=3,
                         progress=False, **CURVES)
    assert sorted(p.name for p in out.glob("shard-*")) == ["shard-00000.npz"]
    calls.clear()
    fail[0] = False
    run = evaluate_dataset(model, dataset(data), "saliency", out=out, shard_size=3,
                           progress=False, **CURVES)
    assert run.computed == [1, 2] and calls == [3, 3, 1, 1]
    monkeypatch.setattr(at_scale, "curves", real)
    ref = evaluate_dataset(model, dataset(data), "saliency", out=tmp_path / "ref",
                           shard_size=3, progress=False, **CURVES)
    np.testing.assert_array_equal(run.load("deletion_auc"), ref.load("deletion_auc"))
    with pytest.raises(shards.ManifestMismatch, match="settings.options.steps: 4"):
        evaluate_dataset(model, dataset(data), "saliency", out=out, shard_size=3, steps=8,
                         baseline="grey", progress=False)


def test_bad_requests_are_explained(model, data, tmp_path):
    x, y, _ = data
    no_masks = tf.data.Dataset.from_tensor_slices((x, y))
    with pytest.raises(ValueError, match="need region masks"):
        evaluate_dataset(model, no_masks, "saliency", out=tmp_path / "a",
                         metrics="pointing_game", progress=False)
    with pytest.raises(ValueError, match="'deletion', 'insertion', 'pointing_game'"):
        evaluate_dataset(model, no_masks, "saliency", out=tmp_path / "b", metrics="auc",
                         progress=False)
    with pytest.raises(ValueError, match="method name .*'saliency'.* or the folder"):
        evaluate_dataset(model, no_masks, "salency", out=tmp_path / "c", progress=False)
