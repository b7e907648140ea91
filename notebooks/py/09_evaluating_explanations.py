# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] slideshow={"slide_type": "slide"}
# # 09 · Evaluating explanations: ground truth, sanity checks and faithfulness
#
# **Goal.** "This model has 92.4% accuracy. Even though it's looking at junk." A saliency map is a
# *claim* about a model, and claims can be tested. On the course's synthetic shapes, where we know
# which pixels decide the label, we test every attribution method of the course four ways:
# 1. **ground truth**: does the map point at the object (pointing game, energy in the mask)?
# 2. **faithfulness**: does deleting the pixels the map ranks first destroy the prediction faster
#    than deleting random pixels (deletion and insertion curves)?
# 3. **sanity**: does the map change when the model's weights are destroyed (cascading
#    randomization)? A map that does not is a picture of the image, not of the model;
# 4. **the model that looks at junk**: a model trained with a watermark that gives the label away
#    is accurate on its own test set, fails when the watermark moves, and the explanations show it.
#
# "Interpretations require interpretations": at the end you will know which pictures to trust.
#
# **You need:** notebooks 05-08 (the attribution methods).

# %%
# On Google Colab, install the course's package first; anywhere else this does nothing.
import sys

if "google.colab" in sys.modules:  # pragma: no cover - only on Colab
    import subprocess

    REPO = "https://github.com/what-cnns-see/what-cnns-see"  # [project.urls] in pyproject.toml
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"git+{REPO}"], check=True)

# %% tags=["parameters"]
# Parameters (CI runs set COURSE_QUICK=1: same code path, fewer images and steps)
from course_utils import config

QUICK = config.quick()

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from course_utils import attribution, data, metrics, models, plotting
from course_utils.metrics import plots as metric_plots
from course_utils.models.trained import SHAPES_TEST_SEED

N_IMAGES = 24 if QUICK else 64  # images scored per method (fewer: one miss = 4%)
STEPS = 10 if QUICK else 16  # deletion/insertion steps
N_SANITY = 5 if QUICK else 8  # images of the randomization check
N_HANS = 8 if QUICK else 32  # images of the clever-Hans section
EVAL_SEED = 2024  # NOT the model's own test split (SHAPES_TEST_SEED): fresh images
assert EVAL_SEED != SHAPES_TEST_SEED
background = data.shapes(16, seed=99)[0]  # reference images for expected gradients (SHAP)
# Per-method settings: cheaper in QUICK mode; otherwise as many samples as the picture needs,
# measured by benchmarks/settings.py (results/settings.txt): on this model 32 IG steps give the
# map of 256 (rank correlation 0.999), occlusion with stride 3 that of stride 1 (0.96), and the
# scores below do not move between these settings and twice as much work. The full run was cut
# again (2026-12-02, from 100/12/48 images, 32 deletion steps, SHAP 100 and RISE 500 samples, 445 s
# on an idle machine): both runs print the same conclusions and pass every check below; pointing
# games moved by at most 0.09, deletion AUCs by at most 0.05, and the watermark ratios stayed
# 3.1x or more for every method but RISE (RISE 1.5x -> 1.7x).
OPTIONS = {
    "smoothgrad": {"n_samples": 12 if QUICK else 50},
    "integrated_gradients": {"steps": 24 if QUICK else 32},
    "occlusion": {"window": 12, "stride": 2 if QUICK else 3},
    "lime": {"n_samples": 100 if QUICK else 300, "segmentation": "slic",
             "segmentation_options": {"n_segments": 50}},
    "shap_gradients": {"n_samples": 32 if QUICK else 64, "background": background},
    "rise": {"n_masks": 300},
}
METHODS = list(attribution.METHODS)
print(METHODS)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. A model and the truth
#
# `models.shapes_cnn()` is a small CNN (four convolutions, global average pooling, a linear
# classifier) trained on the synthetic shapes: a circle, a square or a triangle (the label) and a
# plus sign (a distractor that belongs to no class) on a striped, blotchy background.
# `data.shapes` returns each image's **object mask**: the pixels that decide the label. We score
# explanations on fresh images (not the model's test split) that the model classifies correctly.

# %%
model = models.shapes_cnn()
images, labels, masks = data.shapes(N_IMAGES, seed=EVAL_SEED)
pred = model.predict(images, verbose=0).argmax(axis=1)
print(f"accuracy on {N_IMAGES} fresh images: {np.mean(pred == labels):.3f} "
      f"(test split: {models.history(model)['test_accuracy']:.3f})")
correct = pred == labels
x, y, m = images[correct], labels[correct], masks[correct]
print(f"{len(x)} correctly classified images are explained below")

# %%
plotting.show_panels(x[:6], [None] * 6, [data.synthetic.CLASS_NAMES[c] for c in y[:6]],
                     masks=m[:6], size=2.2,
                     suptitle="fresh test images; yellow: the object mask (the ground truth)")

# %% [markdown]
# ## 2. Every method's maps
#
# One loop over `attribution.METHODS` explains the true class of every image: the lecture's
# methods and the ones met next (Gradient x Input, Guided Backprop, Guided Grad-CAM, Score-CAM,
# RISE). Signed methods (Gradient x Input, IG, occlusion, CAM, LIME, SHAP, RISE) are shown with a
# diverging colormap, the others in one colour.

# %%
maps = {name: attribution.METHODS[name](model, x, y, **OPTIONS.get(name, {})) for name in METHODS}


# %%
plotting.show_maps(x[:4], {name: a[:4] for name, a in maps.items()}, masks=m[:4], alpha=1.0,
                   size=1.5)
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. Ground truth: pointing game and energy in the mask
#
# With the object mask $M$ known, two scores test where a map $a$ points:
#
# - **pointing game** (Zhang et al. 2018): a hit when the maximum lies on the object,
#   $\;\text{hit} = [\arg\max_p a(p) \in M]$; accuracy = share of hits. The paper counts a
#   maximum within 15 px of the object as a hit on 224 px images; scaled to our 64 px images
#   that is `TOLERANCE = 4` px. We report both, strict and with the paper's tolerance;
# - **energy in the mask**: the share of the map's positive mass on the object,
#   $\;E = \sum_{p \in M} a^+(p) \,/\, \sum_p a^+(p)$, with $a^+ = \max(a, 0)$.
#
# A map that spreads evenly scores the object's area fraction: that is **chance**.

# %%
TOLERANCE = round(15 * m.shape[-1] / 224)  # Zhang et al.'s 15 px at 224 px -> 4 px at 64 px
pointing = {name: metrics.pointing_game(a, m) for name, a in maps.items()}
pointing_tol = {name: metrics.pointing_game(a, m, tolerance=TOLERANCE) for name, a in maps.items()}
energy = {name: metrics.energy_in_mask(a, m) for name, a in maps.items()}
chance = metrics.chance_level(m)
print(f"chance: pointing game {chance.mean():.3f}, energy {chance.mean():.3f}")
pd.DataFrame({
    "pointing game": {k: v.mean() for k, v in pointing.items()},
    f"pointing, {TOLERANCE} px tolerance": {k: v.mean() for k, v in pointing_tol.items()},
    "energy in mask (mean)": {k: v.mean() for k, v in energy.items()},
    "energy (10th-90th pct)": {
        k: f"{np.percentile(v, 10):.2f}-{np.percentile(v, 90):.2f}" for k, v in energy.items()},
}).round(3)

# %%
metric_plots.pointing_bars({"strict": pointing, f"within {TOLERANCE} px": pointing_tol},
                           chance=chance.mean(), title="pointing game: the maximum on the object")
plt.show()

# %% [markdown]
# **What to notice.** The methods that read the last feature maps (CAM, Grad-CAM, Grad-CAM++)
# point at the object nearly always: the network's late features *are* about the object.
# Integrated Gradients and occlusion usually do; plain saliency and SmoothGrad often peak on an
# edge of the distractor or the background, and all gradient maps spread their mass over edges
# and texture, so their energy in the mask stays low. Compare every number with chance.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. Faithfulness: deletion and insertion
#
# Ground truth tells us where the *object* is, not what the *model* uses. Petsiuk et al. (2018,
# RISE) test the map against the model itself: remove pixels in the order the map ranks them, in
# `STEPS` steps, and record the model's probability $p_c$ of the explained class
# (removed = a blurred copy of the image, defined in pixel space):
#
# $$\text{deletion AUC} = \int_0^1 p_c\big(x \text{ with the top-}f\text{ fraction removed}\big)
# \, df \quad(\text{lower is better}),$$
#
# and **insertion** puts the pixels back into the blurred image in the same order (higher is
# better). The yardstick is a **random ranking** of the same pixels: a map that cannot beat it
# carries no information about the model. All steps of all images run in large batches.

# %%
candidates = dict(maps, random=metrics.random_maps(x.shape[:3], seed=0))
deletion = {k: metrics.deletion(model, x, a, y, steps=STEPS) for k, a in candidates.items()}
insertion = {k: metrics.insertion(model, x, a, y, steps=STEPS) for k, a in candidates.items()}

# %%
metric_plots.deletion_insertion(deletion, insertion, reference="random")
plt.show()
pd.DataFrame({
    "deletion AUC": {k: c.auc.mean() for k, c in deletion.items()},
    "insertion AUC": {k: c.auc.mean() for k, c in insertion.items()},
}).round(3)

# %% [markdown]
# **What to notice.** Every curve starts at the same point (the intact image) and ends at the same
# point (the blurred image); the methods differ in how fast they get there. Note that deletion
# can be gamed: blurring a few pixels can create an adversarial pattern that lowers $p_c$ without
# removing any evidence. Read deletion and insertion together.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. Sanity checks: randomize the model
#
# Adebayo et al. (2018) asked a blunt question: *if we destroy the model, does the explanation
# change?* `metrics.cascading_randomization` copies the model and re-initializes its layers with
# their own initializers, **from the output layer down**, one more at each stage, and explains the
# same images (same classes) after each stage. The maps are compared with the originals by the
# Spearman rank correlation $\rho$ of $|a|$. A method whose $\rho$ stays above 0.3 when every layer
# is random is **flagged**: what it shows does not depend on what the model learned.

# %%
SANITY_OPTIONS = dict(OPTIONS, lime=dict(OPTIONS["lime"], n_samples=50 if QUICK else 150))
sanity = metrics.cascading_randomization(model, x[:N_SANITY], METHODS, y[:N_SANITY],
                                         options=SANITY_OPTIONS, seed=0)
print("stages:", sanity.stages)

# %%
metric_plots.sanity_curves({name: sanity.mean_correlation(name) for name in METHODS},
                           ["original"] + [f"+{s}" for s in sanity.stages[1:]],
                           threshold=metrics.THRESHOLD,
                           title="cascading randomization, top layer first")
plt.show()
flags = pd.DataFrame(sanity.summary()).T
flags

# %% [markdown]
# The original and the fully randomized maps, side by side, for one image:

# %%
plotting.show_maps(np.stack([x[0], x[0]]),
                   {name: sanity.maps[name][[0, -1], 0] for name in METHODS},
                   titles=["trained model", "all layers random"], alpha=1.0, size=1.5,
                   captions={name: ["", f"rho = {sanity.correlation[name][-1, 0]:.2f}"]
                             for name in METHODS})
plt.show()

# %% [markdown]
# **What to notice.** Saliency, Integrated Gradients, expected gradients (SHAP), occlusion and
# Grad-CAM lose their picture as the layers are destroyed. **Grad-CAM++** keeps most of it: its
# channel weights use only positive gradient terms, so on a random network the map is close to
# a sum of positive activations, which follow the image's contrast whatever the weights.
# **SmoothGrad** averages away part of the model-specific gradient and keeps more of the
# image's edges, which puts it near the line (0.36 in our runs, just above it); **CAM** (a
# weighted sum of activations) is borderline, and **LIME** (superpixels
# of the image) stays well above zero too: check the table for this run's numbers. A flagged
# method is not useless, but its picture mixes
# the image with the model: a sharp, plausible outline is *no evidence* that the model learned
# anything. Trust a picture only from a method that passes this test.

# %% [markdown] slideshow={"slide_type": "slide"}
# ### 5b. The same check on a real ImageNet network
#
# The shapes CNN is small. Adebayo et al. ran the check on Inception v3 trained on ImageNet;
# here it runs on a real trained ImageNet network, the seeds' VGG16 when its weights are there
# and otherwise EfficientNet-Lite0 (real weights that come with the course), named below. The
# cascade goes **one block at a time**, from the classifier down to the stem
# (`metrics.block_stages` groups the layers by block: `predictions`, `top`, `block7`, ...,
# `block1`, `stem` on EfficientNet-Lite0), on three photos, each explained for the class the
# trained network gives it. Each curve is one method's mean rank correlation $\rho$ of $|a|$
# with its map on the trained network, over depth.

# %%
net = models.load("vgg16", fallback="efficientnet_lite0")
net_info = models.info(net)
print("network shown:", net_info.name, "|", net_info.label or "the network asked for")
SIZE = net.input_shape[1]
PHOTOS = ["chelsea", "coffee", "astronaut"]
photos = net_info.preprocess(np.stack([data.sample_image(n, size=SIZE) for n in PHOTOS]))
REAL_METHODS = ["saliency", "smoothgrad", "integrated_gradients", "guided_backprop", "gradcam",
                "gradcam_plus_plus"]
real_sanity = metrics.cascading_randomization(
    net, photos, REAL_METHODS, layers=metrics.block_stages(net), seed=0,
    options={"smoothgrad": {"n_samples": 8}, "integrated_gradients": {"steps": 16}})
print("classes explained:", [net_info.class_names[c] for c in real_sanity.targets])
print("stages:", [s.split("_")[0] for s in real_sanity.stages])

# %%
metric_plots.sanity_curves(
    {name: real_sanity.mean_correlation(name) for name in REAL_METHODS},
    ["trained"] + ["+" + s.split("_")[0] for s in real_sanity.stages[1:]],
    threshold=metrics.THRESHOLD, ylabel="rank correlation with the trained |map|",
    title=f"{net_info.name}: cascading randomization, one block at a time from the top",
    label=net_info.label)
plt.show()
for name in REAL_METHODS:
    curve = real_sanity.mean_correlation(name)
    print(f"{name:22s} rho after the classifier alone {curve[1]:+.2f}, "
          f"after every block {curve[-1]:+.2f}")

# %% [markdown]
# **What to notice** (measured on EfficientNet-Lite0 with three randomization seeds, with and
# without oneDNN and with AVX2 kernels; this run's numbers are printed above). **Saliency**
# loses its picture step by step: randomizing the classifier alone leaves $\rho \approx 0.43$
# (0.42-0.46), the map still follows the image's strong edges through the intact blocks, and
# once every block is random $\rho \approx 0.06$ (0.06-0.07): it passes. **Grad-CAM** falls at
# once and ends near zero (0.07-0.19): it passes. **Grad-CAM++** keeps $\rho \approx 0.7$
# (0.68-0.73) with every block random: it fails, on a real network as on the shapes CNN.
# **SmoothGrad** (0.32-0.34, with the 8 noisy copies used here) and **Integrated Gradients**
# (0.33, 16 steps; both measured with two seeds, with and without oneDNN) end just above the line:
# averaging many gradients keeps the image's edges, so their pictures owe part of their
# sharpness to the image, not to the network. **Guided Backprop** is the finding of Adebayo et
# al. on a real network: with the classifier random its map is unchanged ($\rho$ = 0.998 with
# two randomization seeds), and it stays above 0.9 while the top, `block7a` and `block6a` are
# randomized too (0.93-0.94 after `block6a`); only the lower blocks move it, and with every
# block random it still keeps 0.21-0.27. Its crisp pictures come from the image's edges passed
# through the guided
# ReLUs, not from what the network learned: edge detection, not explanation. The test does not
# split methods into good and bad; it tells you how much of a picture the weights are
# responsible for.

# %%
MEASURED = net_info.name == "efficientnet_lite0"  # the network the bounds were measured on
# "AVX2" below: measured under ONEDNN_MAX_CPU_ISA=AVX2, in quick and full mode alike (the
# default settings gave the same values on the same machine)
if MEASURED:
    assert real_sanity.final("saliency") < 0.2  # measured 0.06-0.07; AVX2 0.064
    assert real_sanity.mean_correlation("saliency")[1] > real_sanity.final("saliency") + 0.2
    assert real_sanity.final("gradcam") < metrics.THRESHOLD  # measured 0.07-0.19; AVX2 0.072
    assert real_sanity.final("gradcam_plus_plus") > 0.5  # measured 0.68-0.73; AVX2 0.734
    guided = real_sanity.mean_correlation("guided_backprop")
    print(f"Guided Backprop: rho {guided[1]:.3f} with the classifier random, {guided[4]:.2f} "
          f"after {real_sanity.stages[4].split('_')[0]}, {guided[-1]:.2f} with every block random")
    assert guided[1] > 0.95 and guided[4] > 0.85  # measured 0.998 and 0.93-0.94 (seeds 0, 1)
    # AVX2: 0.998 and 0.935
    assert guided[1] > real_sanity.mean_correlation("saliency")[1] + 0.3  # 0.998 vs 0.43-0.46
    # AVX2: 0.998 vs 0.432

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6. Data randomization
#
# The second check of Adebayo et al.: train the same architecture on **shuffled labels**. Such a
# model can only memorize noise, so a faithful explanation of it should not resemble the
# explanation of the real model. (A couple of epochs on a small set: this model is barely more than
# random, which is the point.)

# %%
train_x, train_y, _ = data.shapes(256 if QUICK else 1000, seed=7)
noise_model = metrics.shuffled_label_model(model, train_x, train_y, epochs=2, seed=0)
noise_maps = {name: attribution.METHODS[name](noise_model, x[:N_SANITY], y[:N_SANITY],
                                             **SANITY_OPTIONS.get(name, {})) for name in METHODS}
data_rand = pd.Series({name: np.nanmean(metrics.rank_correlation(
    sanity.maps[name][0], noise_maps[name], absolute=True)) for name in METHODS})
data_rand.round(3).to_frame("rank correlation: real vs shuffled-label model")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 7. The whole picture: a table and the spread over images
#
# One row per method; the spread over images matters as much as the mean: a method that is right
# on average and wildly wrong on one image in five is not a method you can show a single picture
# of.

# %%
final_rho = {name: sanity.correlation[name][-1] for name in METHODS}
table = pd.DataFrame({
    "pointing game": {k: pointing[k].mean() for k in METHODS},
    "energy in mask": {k: energy[k].mean() for k in METHODS},
    "energy sd": {k: energy[k].std() for k in METHODS},
    "deletion AUC": {k: deletion[k].auc.mean() for k in METHODS},
    "deletion sd": {k: deletion[k].auc.std() for k in METHODS},
    "insertion AUC": {k: insertion[k].auc.mean() for k in METHODS},
    "insertion sd": {k: insertion[k].auc.std() for k in METHODS},
    "sanity rho (all random)": {k: sanity.final(k) for k in METHODS},
    "fails sanity": {k: sanity.flagged(k) for k in METHODS},
})
random_row = pd.DataFrame({  # the yardstick has only deletion and insertion scores
    "deletion AUC": deletion["random"].auc.mean(), "deletion sd": deletion["random"].auc.std(),
    "insertion AUC": insertion["random"].auc.mean(),
    "insertion sd": insertion["random"].auc.std()}, index=["random"])
table = pd.concat([table, random_row])
table.round(3)

# %%
SANITY_PANEL = "sanity rho, all layers random (lower = better)"
metric_plots.score_spread({
    "energy in mask (higher = better)": energy,
    "deletion AUC (lower = better)": {k: c.auc for k, c in deletion.items()},
    "insertion AUC (higher = better)": {k: c.auc for k, c in insertion.items()},
    SANITY_PANEL: final_rho,
}, order=METHODS + ["random"], lines={SANITY_PANEL: metrics.THRESHOLD})
plt.show()

# %% [markdown]
# ### The targets, asserted
#
# These numbers are checked every time the course is tested: if a change to a method breaks one,
# the tests fail.
#
# - Grad-CAM and occlusion: pointing-game accuracy at least 0.9 on correctly classified images,
#   **with the paper's tolerance** (a maximum within 4 px of the object counts as a hit). Both
#   meet it (1.000 in every run we measured). Strictly (maximum on the object itself) they
#   score lower: Grad-CAM's coarse map, upsampled, sometimes peaks on the object's border, and
#   occlusion's smooth blob (12 px window, stride 2; an 8 px window gave about 0.81) just
#   outside it. The shapes model is retrained on every fresh machine, and CPU kernels that
#   differ only by round-off move the strict score by up to three images out of 24: measured
#   0.875-0.958 for Grad-CAM and 0.865-0.896 for occlusion in quick runs over several
#   trainings. So the strict score is printed, and asserted only at 0.75, ten times chance.
# - every method: deletion AUC lower than a random ranking's on the same images: met.
# - every gradient method: rank correlation below 0.3 once all layers are randomized passes the
#   sanity check. Saliency, Integrated Gradients and Grad-CAM pass clearly (0.12-0.15 over
#   trainings); **Grad-CAM++ fails clearly** (0.70). SmoothGrad (0.36) and expected gradients
#   (SHAP, 0.25-0.26) sit near the line, on either side: their verdict is read off the
#   measurement below, not written into the text, and only the clear cases are asserted.

# %%
for name in ("gradcam", "occlusion"):
    print(f"{name}: pointing game {pointing[name].mean():.3f} strict, "
          f"{pointing_tol[name].mean():.3f} with {TOLERANCE} px tolerance (target 0.9)")
    assert pointing_tol[name].mean() >= 0.9, name
    assert pointing[name].mean() >= 0.75, name
worst = max(deletion[name].auc.mean() / deletion["random"].auc.mean() for name in METHODS)
print(f"deletion AUC / random ranking's AUC, worst method: {worst:.2f}")
for name in METHODS:
    assert deletion[name].auc.mean() < deletion["random"].auc.mean(), name
GRADIENT_METHODS = ["saliency", "smoothgrad", "gradient_x_input", "guided_backprop",
                    "integrated_gradients", "gradcam", "gradcam_plus_plus", "guided_gradcam",
                    "shap_gradients"]
for name in GRADIENT_METHODS:
    verdict = "FAILS" if sanity.final(name) >= metrics.THRESHOLD else "passes"
    print(f"{name:22s} rho, all layers random = {sanity.final(name):+.2f}  ({verdict})")
CLEAR_PASS, CLEAR_FAIL = ["saliency", "integrated_gradients", "gradcam"], ["gradcam_plus_plus"]
# Under ONEDNN_MAX_CPU_ISA=AVX2, saliency / IG / Grad-CAM (asserted < 0.2): 0.13 / 0.14 / 0.12
# quick (0.13 / 0.15 / 0.11 with the model trained under it), 0.15 / 0.14 / 0.12 full;
# Grad-CAM++ (asserted > 0.5): 0.70 quick, 0.67 full.
assert all(sanity.final(name) < metrics.THRESHOLD - 0.1 for name in CLEAR_PASS)
assert all(sanity.final(name) > metrics.THRESHOLD + 0.2 for name in CLEAR_FAIL)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 8. The model that looks at junk
#
# `models.shapes_cnn(spurious=True)` was trained on images with a small black-and-white
# watermark along the top edge whose **position and pattern give the label away** (checkerboard
# on the left: circle, horizontal stripes in the middle: square, vertical stripes on the right:
# triangle), like a photographer's logo that happens to correlate with the class. In its training
# data the watermark is always right and the object only most of the time, as snow is a better
# cue than the animal in the husky-versus-wolf photos. Its own test split is drawn the same way.
# We test both models on three kinds of images: watermark and object both agree with the label;
# the watermark of a **random** class ("moved"); no watermark at all.

# %%
hans = models.shapes_cnn(spurious=True)
test_sets = {
    "watermark = label": data.shapes(N_HANS * 3, seed=EVAL_SEED + 2, spurious=True),
    "watermark moved": data.shapes(N_HANS * 3, seed=EVAL_SEED + 3, spurious="shuffled"),
    "no watermark": data.shapes(N_HANS * 3, seed=EVAL_SEED + 4),
}
accuracy = pd.DataFrame({
    who: dict({"own test split": models.history(net)["test_accuracy"]}, **{
        kind: np.mean(net.predict(d.images, verbose=0).argmax(1) == d.labels)
        for kind, d in test_sets.items()})
    for who, net in [("watermark model", hans), ("clean model", model)]
}).T
accuracy.round(3)

# %%
wm_x, wm_y, wm_obj = wm_data = data.shapes(N_HANS, seed=EVAL_SEED + 1, spurious=True)
wm_mask = wm_data.watermark_masks
hans_maps = {name: attribution.METHODS[name](hans, wm_x, wm_y, **OPTIONS.get(name, {}))
             for name in METHODS}
clean_maps = {name: attribution.METHODS[name](model, wm_x, wm_y, **OPTIONS.get(name, {}))
              for name in METHODS}
share = pd.DataFrame({
    "watermark model: in watermark": {
        k: metrics.energy_in_mask(a, wm_mask).mean() for k, a in hans_maps.items()},
    "clean model: in watermark": {
        k: metrics.energy_in_mask(a, wm_mask).mean() for k, a in clean_maps.items()},
    "watermark model: in object": {
        k: metrics.energy_in_mask(a, wm_obj).mean() for k, a in hans_maps.items()},
    "clean model: in object": {
        k: metrics.energy_in_mask(a, wm_obj).mean() for k, a in clean_maps.items()},
    "watermark model: max in watermark": {
        k: metrics.pointing_game(a, wm_mask).mean() for k, a in hans_maps.items()},
    f"... within {TOLERANCE} px": {
        k: metrics.pointing_game(a, wm_mask, tolerance=TOLERANCE).mean()
        for k, a in hans_maps.items()},
})
print(f"chance: watermark {metrics.chance_level(wm_mask).mean():.3f}, "
      f"object {metrics.chance_level(wm_obj).mean():.3f} of the image")
share.round(3)

# %%
plotting.show_maps(np.stack([wm_x[0], wm_x[0]]),
                   {name: np.stack([hans_maps[name][0], clean_maps[name][0]]) for name in METHODS},
                   titles=["watermark model", "clean model"], masks=wm_mask[[0, 0]],
                   mask_color="red", alpha=1.0, size=1.5)
plt.show()

# %% [markdown]
# **What to notice.** The watermark covers under 1% of the image. For the watermark model, the
# share of attribution inside it is many times that; for the clean model it is near chance, and
# the clean model's mass is on the object instead. The gradient methods put their maximum right on
# the watermark. CAM-style maps, computed on a 16 × 16 grid, give the watermark many times its
# chance share but put their maximum neither on it nor on the object: a coarse map can hint at
# junk without pointing at it, which is why we measure a region's share, not only the maximum.

# %%
ratio = share["watermark model: in watermark"] / share["clean model: in watermark"]
print("how much more attribution the watermark gets from the watermark model:")
print(ratio.round(1).to_string())
assert accuracy.loc["watermark model", "own test split"] >= 0.9
assert accuracy.loc["watermark model", "watermark moved"] < 0.7
assert accuracy.loc["clean model", "watermark moved"] >= 0.9
assert (ratio > 1).all()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 9. Do the methods agree with each other?
#
# When the truth is not known (every real application), agreement between methods is a weak but
# useful signal. `metrics.agreement_matrix` gives the mean Spearman correlation of $|a|$ for every
# pair of methods on the same images.

# %%
names, agree = metrics.agreement_matrix(maps)
metric_plots.agreement(names, agree)
plt.show()

# %% [markdown]
# **What to notice.** The CAM family agrees with itself (CAM, Grad-CAM and Grad-CAM++ read the
# same feature maps); the gradient methods form another group. Agreement is not correctness: two
# methods can agree on the same wrong answer, as the sanity check showed for methods that echo the
# image.
#
# ## Summary
# - Test an explanation against **ground truth** where you have it, against **the model**
#   (deletion/insertion against a random ranking) always, and against a **randomized model**
#   before trusting its look.
# - A high test accuracy does not say what the model looks at: the watermark model is "accurate
#   while looking at junk", and the explanations, checked against the watermark's mask, show it.
# - Interpretations require interpretations: report the numbers and their spread, not one
#   picture.
#
# ## Exercises
# 1. Deletion replaces pixels with a blurred copy. Run `metrics.deletion(..., baseline="grey")`
#    for Grad-CAM and saliency. Does the ranking of the methods change?
# 2. Section 3 printed the pointing game strictly and with a 4 px tolerance. Which methods gain
#    most from the tolerance? Why do CAM-style methods not need it?
# 3. Run the randomization check only on the classifier (`layers=["logits"]`). Which methods
#    change and which do not? Explain with the formula of each method.
# 4. Using the numbers of section 8: which single score would have warned you about the watermark
#    model if you had never seen the moved-watermark test set?
#
# <details><summary>Solutions</summary>
#
# The hidden code cell below (click it to open) runs solutions 1-4 and checks their answers.
#
# 1. `metrics.deletion` with `baseline="grey"` for Grad-CAM, saliency and the random maps.
#    Grey patches are themselves a shape the model can react to, so the absolute numbers
#    change (quick settings: Grad-CAM 0.25 -> 0.36, saliency 0.37 -> 0.46, random 0.64 ->
#    0.53; full settings: Grad-CAM 0.34 -> 0.37, saliency 0.38 -> 0.39, random 0.55 -> 0.43):
#    the gap to random shrinks, with the full settings to a few hundredths for saliency. A
#    method that only beats random with one baseline is fragile.
# 2. Compare `pointing` with `pointing_tol` (section 3): saliency and SmoothGrad gain most (0.67
#    -> 0.96 and 0.54 -> 0.83 in our run): gradient maxima sit on the object's edge or just
#    outside it (the gradient is large where a small change of the input changes the features,
#    at contrast edges). CAM maps are smooth bumps centred on the object, so their maximum is
#    inside anyway (CAM and Grad-CAM 0.88 strictly; occlusion, too, gains no more than they do).
# 3. `metrics.cascading_randomization` with `layers=["logits"]` and the options of section 5.
#    Every method changes; the most, Grad-CAM or occlusion, depending on the training (rank
#    correlation with the original map: Grad-CAM 0.13 for our default model; 0.44 for one
#    trained with another seed, where occlusion, 0.28, changed most). Grad-CAM's map is the
#    feature maps weighted by the gradient of the class score, that is, by the classifier's
#    weights of the explained class; occlusion reads the class score itself. The others keep
#    much of their map, because the layers below, which make its spatial pattern, are
#    unchanged: saliency 0.70-0.75, SHAP 0.55-0.59, Integrated Gradients 0.47-0.57, Grad-CAM++
#    even 0.93-0.94 (5 images: rough numbers).
# 4. The share of attribution in the watermark (or the pointing game with the watermark as the
#    region) for the gradient methods: many times the chance level for the watermark model (in
#    our runs 9-10 times for saliency, 33-34 for Integrated Gradients, 73-77 for SHAP;
#    SmoothGrad's noise spreads it to 3 times). For the clean model the share stays near
#    chance for most methods (median 0.7-1.7 times), though SHAP and LIME reach 4-5 times with
#    the full settings: so compare the two, or look for the region no object ever occupies.
#    The watermark model gives the watermark at least 3 times the clean model's share, for
#    every method but RISE, whose coarse random masks miss the small mark for both models.
#    Without a mask of the suspect region, look at the maps of many images: a
#    bright spot always at the image border is the classic sign.
# </details>

# %% jupyter={"source_hidden": true} tags=["solution"]
# 1. Deletion with grey instead of a blurred copy
grey_auc = {k: metrics.deletion(model, x, candidates[k], y, steps=STEPS, baseline="grey").auc.mean()
            for k in ["gradcam", "saliency", "random"]}
blur_auc = {k: deletion[k].auc.mean() for k in grey_auc}
print("deletion AUC (lower is better), blurred copy -> grey:",
      {k: f"{blur_auc[k]:.3f} -> {grey_auc[k]:.3f}" for k in grey_auc})
assert max(abs(grey_auc[k] - blur_auc[k]) for k in grey_auc) > 0.01  # the numbers change

# 2. Who gains from the pointing game's tolerance
gain = {k: pointing_tol[k].mean() - pointing[k].mean() for k in METHODS}
print("strict -> with tolerance:",
      {k: f"{pointing[k].mean():.2f} -> {pointing_tol[k].mean():.2f}" for k in METHODS})
assert min(pointing[k].mean() for k in ["cam", "gradcam"]) >= 0.8  # inside anyway
assert max(gain[k] for k in ["saliency", "smoothgrad", "integrated_gradients", "occlusion"]) > max(
    gain[k] for k in ["cam", "gradcam"])

# 3. Randomize only the classifier
logits_only = metrics.cascading_randomization(model, x[:N_SANITY], METHODS, y[:N_SANITY],
                                              layers=["logits"], options=SANITY_OPTIONS, seed=0)
rho_logits = {k: logits_only.final(k) for k in METHODS}
print("rank correlation with the original map, classifier random:",
      {k: round(v, 2) for k, v in rho_logits.items()})
# Measured over two trainings (default, seed 1): the lowest is Grad-CAM (0.13) or occlusion
# (0.28), saliency stays 0.31-0.59 above Grad-CAM, Grad-CAM++ at 0.93-0.94. Under
# ONEDNN_MAX_CPU_ISA=AVX2 the lowest is Grad-CAM (0.12-0.13 quick, -0.06 full), saliency
# 0.57-0.59 above it (0.76 full), Grad-CAM++ 0.94 (0.91 full).
assert min(rho_logits, key=rho_logits.get) in {"gradcam", "occlusion"}
assert min(rho_logits.values()) < 0.5 and rho_logits["gradcam_plus_plus"] > 0.8
assert rho_logits["saliency"] > rho_logits["gradcam"] + 0.15

# 4. The score that warns about the watermark model: its share of attribution in the watermark
watermark_chance = metrics.chance_level(wm_mask).mean()
in_watermark = share[["watermark model: in watermark", "clean model: in watermark"]]
print("share in the watermark / chance level:")
print((in_watermark / watermark_chance).round(1).to_string())
gradient_methods = ["saliency", "integrated_gradients", "shap_gradients"]
assert (in_watermark.loc[gradient_methods, "watermark model: in watermark"]
        > 5 * watermark_chance).all()
# The clean model: near chance for most methods (median 0.7-1.7x), but SHAP and LIME reach
# 3.6-4.9x with the full settings; what tells the models apart is the ratio between them
# (at least 3.1x for every method but RISE, quick and full settings; 3.0x for SmoothGrad with
# models trained under ONEDNN_MAX_CPU_ISA=AVX2, quick). RISE cannot see the mark
# at all: its masks are a 7 x 7 grid of 10-px cells, coarser than the mark, and its
# share stays near chance for both models (1.4-1.5x and 0.4-0.9x).
ratio = in_watermark["watermark model: in watermark"] / in_watermark["clean model: in watermark"]
print(f"clean model, median over methods: "
      f"{in_watermark['clean model: in watermark'].median() / watermark_chance:.1f}x chance; "
      f"watermark model / clean model, smallest over methods but RISE: "
      f"{ratio.drop('rise').min():.1f}x; RISE {ratio['rise']:.1f}x")
assert in_watermark["clean model: in watermark"].median() < 2.5 * watermark_chance
assert (ratio.drop("rise") > 2).all()
assert (in_watermark.loc["rise"] < 2.5 * watermark_chance).all()  # measured <= 1.5x
# (AVX2: 1.5x and 0.4x quick, 1.4x and 0.8x full)
