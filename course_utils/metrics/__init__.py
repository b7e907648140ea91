"""Testing explanations: faithfulness, ground truth, sanity checks and agreement.

An attribution map is a claim about the model ("these pixels made it say *circle*"). The course
tests the claim four ways, each batched and compiled like the attribution methods:

- :mod:`~course_utils.metrics.deletion`: **deletion and insertion** curves (Petsiuk et al.
  2018): does removing the top-ranked pixels destroy the prediction faster than a random order?
- :mod:`~course_utils.metrics.localization`: the **pointing game** and the **energy inside a
  region** (the object mask, or the watermark of a clever-Hans model).
- :mod:`~course_utils.metrics.sanity`: **cascading model randomization** (Adebayo et al. 2018):
  does the map change when the model's weights are destroyed?
- :mod:`~course_utils.metrics.agreement`: **rank correlation** between the maps of two methods.

:func:`evaluate_dataset` computes them for a whole ``tf.data.Dataset``, shard by shard, under a
``tf.distribute.Strategy`` and resumable (:mod:`~course_utils.metrics.at_scale`).

Examples
--------
>>> import numpy as np
>>> m = np.zeros((1, 4, 4)); m[0, 0, 0] = 1.0
>>> mask = np.zeros((1, 4, 4), bool); mask[0, :2, :2] = True
>>> float(pointing_game(m, mask)[0]), float(energy_in_mask(m, mask)[0])
(1.0, 1.0)
"""

from course_utils.metrics.agreement import agreement_matrix, rank_correlation
from course_utils.metrics.at_scale import evaluate_dataset, summary
from course_utils.metrics.deletion import Curves, deletion, insertion, random_maps
from course_utils.metrics.localization import chance_level, energy_in_mask, pointing_game
from course_utils.metrics.sanity import (
    THRESHOLD,
    SanityResult,
    block_stages,
    cascading_randomization,
    shuffled_label_model,
)

__all__ = [
    "THRESHOLD", "Curves", "SanityResult", "agreement_matrix", "block_stages",
    "cascading_randomization", "chance_level", "deletion", "energy_in_mask", "evaluate_dataset",
    "insertion", "pointing_game", "random_maps", "rank_correlation", "shuffled_label_model",
    "summary",
]
