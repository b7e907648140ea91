"""Which pixels made the model say this? One API for every attribution method.

    maps = attribution.<method>(model, images, targets=None, **options)

``images`` is one preprocessed image ``(H, W, C)`` or a batch ``(N, H, W, C)``; ``targets`` is
``None`` (the predicted class), one class index or one per image (for a single sigmoid unit, 0
is the class it scores and 1 the other one). Every method returns float32 ``(N, H, W)`` maps at
input resolution, unnormalized (normalize for display only, see ``course_utils.plotting``).

``METHODS`` maps each method's name to its function so that notebooks and metrics can loop::

    for name, method in attribution.METHODS.items():
        maps[name] = method(model, images, targets)

:func:`noise_tunnel` turns any of them into its SmoothGrad, SmoothGrad² or VarGrad
(``noise_tunnel(saliency, "vargrad")``; ``smoothgrad`` is the first of saliency).

:func:`explain_dataset` runs a method over a whole ``tf.data.Dataset``, shard by shard, under
an optional ``tf.distribute.Strategy``, and resumes after an interruption
(:mod:`~course_utils.attribution.at_scale`).

Examples
--------
>>> sorted(METHODS)[:3]
['cam', 'gradcam', 'gradcam_plus_plus']
"""

from course_utils.attribution.at_scale import explain_dataset
from course_utils.attribution.cam import cam
from course_utils.attribution.gradcam import gradcam
from course_utils.attribution.gradcam_plus_plus import gradcam_plus_plus
from course_utils.attribution.gradient_x_input import gradient_x_input
from course_utils.attribution.guided_backprop import guided_backprop
from course_utils.attribution.guided_gradcam import guided_gradcam
from course_utils.attribution.integrated_gradients import integrated_gradients
from course_utils.attribution.lime import lime
from course_utils.attribution.noise_tunnel import noise_tunnel
from course_utils.attribution.occlusion import occlusion
from course_utils.attribution.rise import rise
from course_utils.attribution.saliency import saliency
from course_utils.attribution.scorecam import scorecam
from course_utils.attribution.shap_gradients import shap_gradients
from course_utils.attribution.smoothgrad import smoothgrad

METHODS = {
    "saliency": saliency,
    "smoothgrad": smoothgrad,
    "gradient_x_input": gradient_x_input,
    "guided_backprop": guided_backprop,
    "integrated_gradients": integrated_gradients,
    "occlusion": occlusion,
    "cam": cam,
    "gradcam": gradcam,
    "gradcam_plus_plus": gradcam_plus_plus,
    "guided_gradcam": guided_gradcam,
    "lime": lime,
    "shap_gradients": shap_gradients,
    "scorecam": scorecam,
    "rise": rise,
}

#: Methods whose maps are signed (show them with a diverging colormap).
SIGNED = frozenset({"integrated_gradients", "gradient_x_input", "occlusion", "cam", "lime",
                    "shap_gradients", "rise"})

__all__ = ["METHODS", "SIGNED", "explain_dataset", "noise_tunnel", *METHODS]
