"""Interactive explorers (ipywidgets) for the course's notebooks.

Every explorer is an :class:`Explorer`: controls wired with ``ipywidgets.interactive_output``
to a fixed-size output, fed from a cache of computed results keyed by the control values.
Display one as the last expression of a cell; drive it headlessly with ``explorer.set(...)``.

:func:`show_panels` draws a free-form grid of ``course_utils.plotting.overlay`` panels.

Examples
--------
>>> from course_utils import widgets
>>> sorted(widgets.ATTRIBUTION_EXPLORERS)[:2]
['gradcam', 'gradient_x_input']
"""

import functools

from course_utils.widgets._base import Explorer, LRUCache, Update, control_values
from course_utils.widgets._draw import show_panels
from course_utils.widgets.attribution import (
    gradcam_explorer,
    integrated_gradients_explorer,
    lime_explorer,
    occlusion_explorer,
    rise_explorer,
    scorecam_explorer,
    smoothgrad_explorer,
)
from course_utils.widgets.features import channel_explorer, visualization_explorer  # noqa: F401

#: The explorer of each attribution method, keyed by its name in ``attribution.METHODS``
#: (Gradient x Input and Guided Backprop: the SmoothGrad explorer opened on them; Guided
#: Grad-CAM: the Grad-CAM explorer with its "guided" toggle on).
ATTRIBUTION_EXPLORERS = {
    "smoothgrad": smoothgrad_explorer,
    "integrated_gradients": integrated_gradients_explorer,
    "occlusion": occlusion_explorer,
    "lime": lime_explorer,
    "gradcam": gradcam_explorer,
    "scorecam": scorecam_explorer,
    "rise": rise_explorer,
    "gradient_x_input": functools.partial(smoothgrad_explorer, method="gradient_x_input"),
    "guided_backprop": functools.partial(smoothgrad_explorer, method="guided_backprop"),
    "guided_gradcam": functools.partial(gradcam_explorer, guided=True),
}

__all__ = [
    "ATTRIBUTION_EXPLORERS", "Explorer", "LRUCache", "Update", "control_values",
    "gradcam_explorer", "integrated_gradients_explorer", "lime_explorer", "occlusion_explorer",
    "rise_explorer", "scorecam_explorer", "show_panels", "smoothgrad_explorer",
]
