"""What the layers hold: intermediate activations and feature visualization.

Activations (lesson 02)
    :func:`activations`, :func:`depth_summary`, :func:`dead_channels`, :class:`CachedActivations`
Feature visualization (lesson 03)
    :func:`visualize` (channel / neuron / layer / class objectives, ``method="lucid"`` or
    ``"naive"``), :func:`class_visualization`, :func:`deepdream`, :class:`ChannelAtlas`
Dataset examples (lesson 03)
    :func:`top_patches` (the patches of a dataset that excite a channel most),
    :func:`receptive_field` (which input pixels a unit sees)
Quality checks
    :func:`natural_ratio`, :func:`response_matrix`, :func:`diagonal_dominance`
Figures
    :mod:`course_utils.features.plotting`

Examples
--------
>>> import keras, numpy as np
>>> from course_utils import features
>>> m = keras.Sequential([keras.Input((None, None, 3)),
...                       keras.layers.Conv2D(4, 3, activation="relu", name="c")])
>>> features.activations(m, np.zeros((8, 8, 3)), ["c"])["c"].shape
(1, 6, 6, 4)
"""

from course_utils.features import plotting
from course_utils.features.activations import (
    CachedActivations,
    DepthSummary,
    activations,
    dead_channels,
    default_layers,
    depth_summary,
    input_correlation,
)
from course_utils.features.atlas import ChannelAtlas
from course_utils.features.dataset_examples import TopPatches, top_patches
from course_utils.features.deepdream import deepdream
from course_utils.features.param import LUCID, NAIVE, Param
from course_utils.features.quality import (
    diagonal_dominance,
    high_frequency_share,
    natural_ratio,
    response_matrix,
    shift_robustness,
)
from course_utils.features.receptive_field import ReceptiveField, receptive_field
from course_utils.features.transforms import Transforms
from course_utils.features.visualize import Visualization, class_visualization, visualize

__all__ = [
    "LUCID",
    "NAIVE",
    "CachedActivations",
    "ChannelAtlas",
    "DepthSummary",
    "Param",
    "ReceptiveField",
    "TopPatches",
    "Transforms",
    "Visualization",
    "activations",
    "plotting",
    "class_visualization",
    "dead_channels",
    "deepdream",
    "default_layers",
    "depth_summary",
    "diagonal_dominance",
    "high_frequency_share",
    "input_correlation",
    "natural_ratio",
    "receptive_field",
    "response_matrix",
    "shift_robustness",
    "top_patches",
    "visualize",
]
