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
# # 04 · Saliency: gradients, SmoothGrad and Integrated Gradients
#
# **Goal.** Ask the network which pixels its answer is most sensitive to, three ways:
# 1. **vanilla gradients** (Simonyan et al. 2013): the derivative of the class score with
#    respect to every pixel, computed by hand with a `GradientTape` and by `course_utils`;
# 2. **SmoothGrad** (Smilkov et al. 2017): average the gradients of noisy copies to remove
#    their speckle;
# 3. **Integrated Gradients** (Sundararajan et al. 2017): accumulate gradients on a path from
#    a *baseline* image, so that the attributions add up to the change of the score (the
#    completeness check), and see why the choice of baseline is a modelling decision;
# 4. check all three against ground truth on the course's synthetic shapes, then run them on
#    an ImageNet network.
#
# **You need:** notebooks 00 and 01 (the Fashion-MNIST CNN). About 2 minutes on a laptop CPU.

# %%
# On Google Colab, install the course's package first; anywhere else this does nothing.
import sys

if "google.colab" in sys.modules:  # pragma: no cover - only on Colab
    import subprocess

    REPO = "https://github.com/what-cnns-see/what-cnns-see"  # [project.urls] in pyproject.toml
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"git+{REPO}"], check=True)

# %% tags=["parameters"]
# Parameters (CI runs set COURSE_QUICK=1: same code path, fewer samples and steps)
from course_utils import config

QUICK = config.quick()
N_SAMPLES = 10 if QUICK else 50  # SmoothGrad noisy copies
IG_STEPS = 32 if QUICK else 128  # Integrated Gradients path steps
N_SHAPES = 12 if QUICK else 48  # shapes images for the ground-truth check
IMAGENET_MODEL = "mobilenet_v2" if QUICK else "xception"

# %%
import keras
import numpy as np
import tensorflow as tf

from course_utils import attribution, data, metrics, models, widgets
from course_utils.widgets import show_panels

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. The idea: a first-order picture of the score
#
# Call $S_c(x)$ the **score** of class $c$: the value before the softmax (the *logit*). Near a
# given image $x_0$ the network is, to first order, linear:
#
# $$ S_c(x) \approx S_c(x_0) + w^\top (x - x_0), \qquad w = \left.\frac{\partial S_c}{\partial
# x}\right|_{x_0}. $$
#
# The gradient $w$ has one entry per pixel and channel: it says how much the score would move
# if that number changed a little. The **saliency map** is its size per pixel,
# $M_{ij} = \max_{ch} |w_{ij,ch}|$.
#
# Two details matter. We differentiate the **logit**, not the softmax probability: a confident
# prediction sits on the flat top of the softmax, whose gradient is almost zero everywhere.
# And the map tells *sensitivity*, not *evidence*: a pixel can matter a lot and still be black.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### The core in five lines
#
# The Fashion CNN of notebook 01 ends in a `logits` layer followed by a `Softmax`; a model that
# stops at the logits gives us $S_c$.

# %%
model = models.fashion_cnn()
(_, _), (x_test, y_test) = data.fashion_mnist()
x = (x_test[:6].astype("float32") / 255.0)[..., None]
labels = y_test[:6].astype("int64")
names = data.fashion.CLASS_NAMES

logit_model = keras.Model(model.input, model.get_layer("logits").output)
xt = tf.constant(x)
with tf.GradientTape() as tape:
    tape.watch(xt)
    scores = tf.gather(logit_model(xt), labels, batch_dims=1)  # S_c for each image's class
by_hand = tf.reduce_max(tf.abs(tape.gradient(scores, xt)), axis=-1).numpy()

# %% [markdown]
# `course_utils` does the same with one call (compiled, batched, for any model), which we use
# from now on. The two must agree:

# %%
sal = attribution.saliency(model, x, targets=labels)
print("largest difference:", float(np.abs(sal - by_hand).max()))
assert np.allclose(sal, by_hand, atol=1e-5)

show_panels(x, list(sal), [names[c] for c in labels], model=model,
          suptitle="Vanilla gradients of the Fashion CNN (each map scaled on its own)")

# %% [markdown]
# **What to notice.** The maps follow the garment's outline and a few inner details (a collar,
# the gap between trouser legs), but they are speckled: single pixels flip from bright to dark.
# The gradient of a ReLU network jumps from one linear piece to the next, so tiny changes of the
# input change it a lot.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. SmoothGrad: average away the speckle
#
# Take $n$ copies of the image with Gaussian noise and average their saliency maps:
#
# $$ \hat M(x) = \frac{1}{n}\sum_{k=1}^{n} M\big(x + \varepsilon_k\big), \qquad
#    \varepsilon_k \sim \mathcal N(0, \sigma^2), \quad \sigma = \text{level}\times(\max x - \min
#    x). $$
#
# The noise is relative to the input's range: 15 % means the same on `[0, 1]` and `[0, 255]`
# images. The paper recommends 10-20 % noise and about 50 samples. The core is a loop:

# %%
rng = np.random.default_rng(0)
sigma = 0.15 * (x[:1].max() - x[:1].min())
noisy = x[:1] + sigma * rng.standard_normal((N_SAMPLES,) + x.shape[1:]).astype("float32")
smooth_by_hand = attribution.saliency(model, noisy, targets=int(labels[0])).mean(axis=0)

smooth = attribution.smoothgrad(model, x, targets=labels, n_samples=N_SAMPLES, noise_level=0.15)

# %%
show_panels(np.concatenate([x, x]), list(sal) + list(smooth),
          [f"gradient: {names[c]}" for c in labels] + [f"SmoothGrad: {names[c]}" for c in labels],
          model=model, ncols=6)

# %% [markdown]
# How smooth is a map? Its **total variation** (the summed jumps between neighbouring pixels,
# relative to the map's own total) is a number we can compare:

# %%
def roughness(m):
    m = m / (np.abs(m).sum(axis=(-2, -1), keepdims=True) + 1e-12)
    return (np.abs(np.diff(m, axis=-1)).sum(axis=(-2, -1))
            + np.abs(np.diff(m, axis=-2)).sum(axis=(-2, -1)))


print("roughness, gradient:  ", roughness(sal).round(3))
print("roughness, SmoothGrad:", roughness(smooth).round(3))
print("SmoothGrad by hand vs course_utils, correlation:",
      round(float(np.corrcoef(smooth_by_hand.ravel(), smooth[0].ravel())[0, 1]), 2))
assert (roughness(smooth) < roughness(sal)).mean() >= 5 / 6

# %% [markdown]
# **What to notice.** SmoothGrad keeps the shape of the garment and drops the isolated pixels.
# The map made by hand, with other noise draws, looks alike (high correlation) but is not
# identical: SmoothGrad is a Monte-Carlo estimate, and more samples make it steadier.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. Integrated Gradients: from a baseline to the image
#
# A gradient is local; Integrated Gradients (IG) looks along the whole straight path from a
# **baseline** $x'$ (an image that "says nothing", e.g. black) to the image $x$:
#
# $$ \mathrm{IG}_i(x) = (x_i - x'_i)\int_0^1
# \frac{\partial S_c}{\partial x_i}\big(x' + \alpha (x - x')\big)\,d\alpha. $$
#
# Its key property is **completeness**: the attributions add up to the change of the score,
# $\sum_i \mathrm{IG}_i(x) = S_c(x) - S_c(x')$. In practice the integral is a sum over
# `steps` points, and completeness tells us whether we took enough steps. The core, with the
# midpoint rule:

# %%
def integrated_gradients_by_hand(x1, cls, steps):
    baseline = np.zeros_like(x1)  # black, in pixel space = in this model's space
    alphas = (np.arange(steps) + 0.5) / steps
    path = tf.constant(baseline + alphas[:, None, None, None] * (x1 - baseline), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(path)
        s = logit_model(path)[:, cls]
    grads = tape.gradient(s, path).numpy().mean(axis=0)
    return ((x1 - baseline) * grads).sum(axis=-1)  # sum the channels: completeness holds


ig_hand = integrated_gradients_by_hand(x[0], int(labels[0]), IG_STEPS)
ig0 = attribution.integrated_gradients(model, x[:1], targets=labels[:1], steps=IG_STEPS,
                                       baseline="black")
print("by hand vs course_utils, largest difference:", float(np.abs(ig_hand - ig0[0]).max()))
assert np.allclose(ig_hand, ig0[0], atol=1e-4)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### The completeness check, and how many steps
#
# `return_info=True` gives, per image, the sum of the attributions, $S_c(x) - S_c(x')$ and the
# relative error between them. With too few steps the sum misses; the error shrinks as the
# steps grow. How many steps are enough depends on the network and the image, so the papers
# advise to *check* completeness and raise the steps until it holds. `steps="auto"` does
# exactly that: it starts at 16 steps and doubles them, image by image, until the relative
# error is below `tolerance` (1 % unless you say otherwise).

# %%
for steps in (2, 8, IG_STEPS):
    _, inf = attribution.integrated_gradients(model, x, targets=labels, steps=steps,
                                              return_info=True)
    print(f"{steps:4d} steps: worst completeness error {100 * inf['relative_error'].max():5.2f} %")
ig, info = attribution.integrated_gradients(model, x, targets=labels, steps="auto",
                                            baseline="black", return_info=True)
print("steps='auto' chose per image:", info["steps"])
print(f"worst completeness error: {100 * info['relative_error'].max():.2f} %")
print("sum of attributions:", info["sum"].round(2))
print("S(x) - S(black):    ", info["delta"].round(2))
assert info["relative_error"].max() < 0.01  # completeness holds for every image

show_panels(x, list(ig), [f"IG: {names[c]}" for c in labels], model=model, signed=True,
          suptitle="Integrated Gradients (red raises the score, blue lowers it)")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### The baseline question
#
# IG explains the score **relative to the baseline**. Look at the formula: the factor
# $(x_i - x'_i)$ is zero wherever the image equals the baseline. Fashion-MNIST images sit on a
# black background, so with a black baseline every background pixel gets exactly zero, even
# though a white blob there would change the answer. A white baseline asks another question
# ("what makes this differ from a white sheet?").

# %%
ig_white = attribution.integrated_gradients(model, x, targets=labels, steps=IG_STEPS,
                                            baseline="white")
background = x[..., 0] == 0.0
print("share of pixels that are exactly black:", round(float(background.mean()), 2))
print("largest |IG| on them, black baseline:", float(np.abs(ig[background]).max()))
print("largest |IG| on them, white baseline:", round(float(np.abs(ig_white[background]).max()), 4))
assert np.abs(ig[background]).max() == 0.0
assert np.abs(ig_white[background]).max() > 0.0

show_panels(np.concatenate([x[:3], x[:3]]), list(ig[:3]) + list(ig_white[:3]),
          [f"black baseline: {names[c]}" for c in labels[:3]]
          + [f"white baseline: {names[c]}" for c in labels[:3]], model=model, signed=True)

# %% [markdown]
# **What to notice.** Same image, same network, two different stories. No baseline is
# "neutral": black says "compared with nothing", white, grey, a blurred copy or the mean of
# the data each ask their own question. State the baseline whenever you show an IG map.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. Checking against ground truth: the shapes
#
# On a photo we cannot know which pixels *should* matter. The course's synthetic dataset can:
# every image holds one target shape (circle, square or triangle: the label), a distractor
# "plus" and a textured background, and we know the target's mask. A faithful map should put
# more of its mass inside the mask than the mask's share of the image.

# %%
shapes_model = models.shapes_cnn()
sx, sy, smask = data.shapes(N_SHAPES, seed=7)
shape_names = data.synthetic.CLASS_NAMES
shape_maps = {
    "gradient": attribution.saliency(shapes_model, sx, sy),
    "SmoothGrad": attribution.smoothgrad(shapes_model, sx, sy, n_samples=N_SAMPLES),
    "IG": np.abs(attribution.integrated_gradients(shapes_model, sx, sy, steps=IG_STEPS)),
}
area = smask.mean()
print(f"the target covers {100 * area:.1f} % of the image on average")
for name, m in shape_maps.items():
    inside = (m * smask).sum(axis=(1, 2)) / (m.sum(axis=(1, 2)) + 1e-12)
    print(f"{name:>10}: {100 * inside.mean():5.1f} % of the map's mass inside the target")
    assert inside.mean() > area, name

# %%
k = 4
show_panels(np.concatenate([sx[:k]] * 4),
          [None] * k + [m for name in shape_maps for m in shape_maps[name][:k]],
          [shape_names[c] for c in sy[:k]] + [f"{n}" for n in shape_maps for _ in range(k)],
          model=shapes_model, ncols=k, size=2.2)

# %% [markdown]
# **What to notice.** All three methods put more mass on the target than its share of the
# image: this network does look at the shape. Plain gradients and IG do so clearly; SmoothGrad,
# whose noise blurs the map over the textured background, only just. A prettier map is not
# necessarily a better-localized one. That is a check a
# photo cannot give you; notebook 09 turns it into metrics.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. An ImageNet network, two classes on one picture
#
# The same calls work on a pretrained network. `models.load` returns it with its
# preprocessing; `net_info.preprocess` maps a photo in `[0, 255]` to the network's input.
# Without the seeds' network's weights (offline), `fallback=` shows EfficientNet-Lite0
# instead, a real ImageNet network whose weights come with the course; the figures say which
# network you see.
#
# The picture holds two objects, a cat (left) and a cup of espresso (right), the Grad-CAM
# paper's demonstration. A map that explains *a class* should put the evidence for
# "Egyptian cat" on the cat and the evidence for "espresso" on the cup. We measure it: the
# share of each map's positive mass on its own object (0.5 = no preference).

# %%
net = models.load(IMAGENET_MODEL, fallback="efficientnet_lite0")
net_info = models.info(net)
if net_info.label:
    print(net_info.label)
size = models.input_size(net_info.name)
pair, halves = data.two_photos("chelsea", "coffee", size=size)
xp = net_info.preprocess(pair[None].copy())[0]
top = models.decode(net_info.name, net.predict(xp[None], verbose=0), top=5)[0]
print("top-5:", [(name, round(p, 3)) for _, name, p in top])
CAT, ESPRESSO = 285, 967  # "Egyptian cat", "espresso"
X, T = np.stack([xp, xp]), [CAT, ESPRESSO]
ig_pair, ig_pair_info = attribution.integrated_gradients(net, X, T, steps="auto",
                                                         tolerance=0.05, return_info=True)
print("IG steps chosen:", ig_pair_info["steps"], "completeness error:",
      ig_pair_info["relative_error"].round(3))
pair_maps = {
    "gradient": attribution.saliency(net, X, T),
    "SmoothGrad": attribution.smoothgrad(net, X, T, n_samples=N_SAMPLES),
    "IG": ig_pair,
}
# share of each map's positive mass on its own object: the cat's half, the cup's half
shares = {name: metrics.energy_in_mask(m, halves) for name, m in pair_maps.items()}
for name, (on_cat, on_cup) in shares.items():
    print(f"{name:>10}: 'Egyptian cat' map {100 * on_cat:4.1f} % on the cat, "
          f"'espresso' map {100 * on_cup:4.1f} % on the cup")
assert all(on_cat > 0.55 for on_cat, _ in shares.values())  # the top class: on the cat
assert all(on_cup < 0.7 for _, on_cup in shares.values())  # the other: hardly on the cup
show_panels(pair, [None, *[m[k] for m in pair_maps.values() for k in (0, 1)]],
            ["input"] + [f"{name}: {net_info.class_names[c]}" for name in pair_maps
                         for c in (CAT, ESPRESSO)],
            model=net, signed=[False] + [False] * 4 + [True] * 2, ncols=4, size=2.8)

# %% [markdown]
# **What to notice.** On the real network (EfficientNet-Lite0, measured the same with and
# without oneDNN and with AVX2 kernels) the "Egyptian cat" maps lean towards the cat: 57 %
# of the plain gradient's mass, 75 % of SmoothGrad's and 65 % of IG's. But the "espresso" maps
# barely prefer the cup: 61 %, 50-53 % and 55 %. Pixel gradients answer "which pixels would
# change this score", and the espresso logit is sensitive to the cat's edges too. They are
# not **class-discriminative**: two different classes get two similar pictures. That is the
# problem Grad-CAM (notebook 07) was made to solve; occlusion (05) and LIME (06) separate the
# two objects on this very picture. IG needed 64-128 steps here to reach 5 % completeness
# error (and more than 1024 for 1 %): a real network's path is far less straight than the
# small CNN's.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6. Explore: noise, samples and steps
#
# Move the sliders. The SmoothGrad explorer computes the noisy gradients of a noise level once
# and then only averages more or fewer of them; the IG explorer reports the completeness error
# live. `warm()` computes the views in advance so the sliders respond at once.

# %%
i = 0
sg_explorer = widgets.smoothgrad_explorer(shapes_model, sx[i], int(sy[i]),
                                          max_samples=N_SAMPLES * 2)
sg_explorer.warm(noise_level=[0.0, 0.1, 0.2, 0.3])
sg_explorer

# %%
ig_view = widgets.integrated_gradients_explorer(shapes_model, sx[i], int(sy[i]),
                                                steps=(1, 2, 4, 8, 16, 32, 64))
ig_view

# %% [markdown]
# The explorers can also be driven from code, which is how the tests check them:

# %%
few = sg_explorer.set(noise_level=0.2, n_samples=1)
many = sg_explorer.set(n_samples=N_SAMPLES * 2)
assert many.cached and not np.allclose(few.result[0], many.result[-1])
coarse, fine = ig_view.set(steps=1), ig_view.set(steps=64)
print(f"completeness error: {100 * coarse.result['relative_error']:.1f} % with 1 step, "
      f"{100 * fine.result['relative_error']:.2f} % with 64")
assert fine.result["relative_error"] < 0.02

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 7. Three more gradient methods
#
# - **Gradient × Input** (Shrikumar et al. 2016): the gradient times the input,
#   $\sum_{ch} x_{ij,ch}\,\partial S_c/\partial x_{ij,ch}$, signed. On a linear model it is
#   exactly each pixel's contribution $w \cdot x$ to the score.
# - **The noise tunnel** (Captum's name): any method's maps of noisy copies, reduced per pixel
#   to their mean (**SmoothGrad**), the mean of their squares (**SmoothGrad²**, Hooker et al.
#   2019) or their variance (**VarGrad**, Adebayo et al. 2018).
#   `attribution.noise_tunnel(method, kind)` makes one from any method; `smoothgrad` is the
#   first kind of `saliency`.
# - **Guided Backprop** (Springenberg et al. 2015): the gradient, but every ReLU passes back
#   only positive gradients (at positive inputs).
#
# On the shapes of section 4, with the same mass-inside-the-target measure, and how much of a
# map sits in its brightest 5 % of pixels:

# %%
def share_inside(m):
    m = np.abs(m)
    return ((m * smask).sum(axis=(1, 2)) / (m.sum(axis=(1, 2)) + 1e-12)).mean()


def top5_share(m, q=0.05):
    flat = np.sort(np.abs(m).reshape(len(m), -1), axis=1)[:, ::-1]
    return (flat[:, :int(q * flat.shape[1])].sum(1) / flat.sum(1)).mean()


more_maps = {"gradient": shape_maps["gradient"],
             "gradient x input": attribution.gradient_x_input(shapes_model, sx, sy)}
# noise_tunnel(saliency, "smoothgrad") is attribution.smoothgrad (same draws, equal maps):
# section 4's SmoothGrad map is reused, not computed again
more_maps["smoothgrad"] = shape_maps["SmoothGrad"]
for kind in ("smoothgrad_sq", "vargrad"):
    tunnel = attribution.noise_tunnel(attribution.saliency, kind, n_samples=N_SAMPLES)
    more_maps[kind] = tunnel(shapes_model, sx, sy)
more_maps["guided backprop"] = attribution.guided_backprop(shapes_model, sx, sy)
for name, m in more_maps.items():
    print(f"{name:>16}: {100 * share_inside(m):5.1f} % inside the target, "
          f"{100 * top5_share(m):4.1f} % in the top 5 % of pixels")
on_target = {name: share_inside(m) for name, m in more_maps.items()}
in_top5 = {name: top5_share(m) for name, m in more_maps.items()}
gains = {"gradient x input / gradient, mass inside":
         on_target["gradient x input"] / on_target["gradient"],
         "guided backprop / gradient, mass inside":
         on_target["guided backprop"] / on_target["gradient"],
         "SmoothGrad² / SmoothGrad, top-5 % share":
         in_top5["smoothgrad_sq"] / in_top5["smoothgrad"],
         "VarGrad / SmoothGrad, top-5 % share": in_top5["vargrad"] / in_top5["smoothgrad"]}
for what, gain in gains.items():
    print(f"{what}: {gain:.2f}x")
# measured on two trainings (COURSE_TRAIN_SEED 0 and 1), quick and full settings:
assert on_target["gradient x input"] > 1.2 * on_target["gradient"]  # 1.47-1.58x
assert on_target["guided backprop"] > on_target["gradient"]  # 1.23-1.33x
assert in_top5["smoothgrad"] < in_top5["smoothgrad_sq"] < in_top5["vargrad"]  # 1.33-1.50x
assert in_top5["vargrad"] > 1.3 * in_top5["smoothgrad"]  # 1.50-2.08x
assert all(on_target[k] < 2 * area for k in ("smoothgrad", "smoothgrad_sq", "vargrad"))

# %%
names7 = list(more_maps)
show_panels(sx[0], [None] + [more_maps[n][0] for n in names7],
            [shape_names[sy[0]]] + names7, model=shapes_model,
            signed=[False, False, True] + [False] * 4, ncols=4, size=2.2)

# %% [markdown]
# **What to notice.** Multiplying by the input helps here: Gradient × Input puts 1.5-1.6
# times the gradient's share of its mass inside the target, because the shape is where the
# input is bright and the textured background is dimmer. The three kinds of the noise tunnel
# reduce the same noisy gradients differently: squaring (SmoothGrad²) and the variance
# (VarGrad) put 1.3-1.5 and 1.5-2.1 times the mean's share of the map in its brightest 5 %
# of pixels (the higher numbers with fewer samples), yet none of the three puts much more of
# its mass on the target than the target's share of the image, as SmoothGrad in section 4.
# A sharper picture is not a better-localized one. Guided Backprop looks crisp and puts
# 1.2-1.3 times the plain gradient's share of its mass on the target here; but Adebayo et
# al. (2018) found that its maps hardly change when the network's weights are randomized:
# it is crisp partly because it redraws the input's edges, not only because of what the
# network learned (the sanity checks of notebook 09).

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Exercises
# 1. Compute a saliency map of the **softmax probability** instead of the logit for a test image
#    the Fashion CNN classifies with probability above 0.99 (use `model` instead of
#    `logit_model` in section 1). Compare the sizes of the two gradients. What happened?
# 2. In the SmoothGrad explorer, set the noise to 0.5. Why does the map get worse again?
# 3. Run IG on the shapes model with a `"grey"` and a `"mean"` baseline. Which one gives the
#    most mass inside the target?
# 4. Show that IG of a *linear* model is exactly $(x - x')\cdot w$ for any number of steps.
#
# <details><summary>Solutions</summary>
#
# The hidden code cell below (click it to open) runs solutions 1-4 and checks their answers.
#
# 1. The probability's gradient is orders of magnitude smaller: the softmax is saturated
#    ($p(1-p) \approx 0.01$ or less multiplies every entry) and it also mixes in the other
#    classes' logits. For the first test image ($p = 0.996$) it is about 150 times smaller.
#    Explaining logits avoids both.
# 2. With $\sigma$ at half the input range the noisy copies are no longer images of the object;
#    the gradients then describe noise, and their average washes the object out: on the shapes
#    images the mean attribution inside the target is only about 1.1 times that outside
#    (1.2 at the default noise 0.15, 3.4 for the plain gradient). These small, clean images
#    need little noise.
# 3. `attribution.integrated_gradients` with `baseline="grey"` and with `baseline="mean"`, and
#    the mass-inside computation of section 4. The answer depends on the images: that is the
#    point of the baseline question; report the baseline with the map. (On the 12 shapes
#    images of section 4: black 21 %, grey 25 %, mean 33 %.)
# 4. For $S(x) = w^\top x + b$ the gradient is $w$ everywhere on the path, so the average is
#    $w$ whatever the steps: on a linear Keras model (`Flatten` then `Dense`), Integrated
#    Gradients with 1 step and with 7 steps both equal $(x - x') \cdot w$ for the black
#    baseline $x' = 0$.
# </details>

# %% jupyter={"source_hidden": true} tags=["solution"]
# 1. The gradient of the probability against that of the logit
probs = model.predict(x, verbose=0)
sure = int(np.flatnonzero(probs[np.arange(len(x)), labels] > 0.99)[0])
x_sure, c_sure = tf.constant(x[sure : sure + 1]), int(labels[sure])
grads = {}
for name, net_ in [("logit", logit_model), ("probability", model)]:
    with tf.GradientTape() as tape:
        tape.watch(x_sure)
        score = net_(x_sure)[0, c_sure]
    grads[name] = float(tf.norm(tape.gradient(score, x_sure)))
grad_ratio = grads["probability"] / grads["logit"]
print(f"image {sure} ({names[c_sure]}, p = {probs[sure, c_sure]:.4f}): gradient norm "
      f"{grads['logit']:.3g} (logit) vs {grads['probability']:.3g} (probability), "
      f"ratio {grad_ratio:.1e}")
assert grad_ratio < 0.05

# 2. SmoothGrad with noise at half the input range: the object washes out
def mass_inside(m):
    return float(((m * smask).sum(axis=(1, 2)) / (m.sum(axis=(1, 2)) + 1e-12)).mean())


def contrast(m):
    """Mean attribution inside the target / outside it (1: the map ignores the object)."""
    return float(np.mean([a[k].mean() / a[~k].mean() for a, k in zip(m, smask)]))


noisy_maps = attribution.smoothgrad(shapes_model, sx, sy, n_samples=N_SAMPLES, noise_level=0.5)
sg_contrast = {"plain gradient": contrast(shape_maps["gradient"]),
               "noise 0.15": contrast(shape_maps["SmoothGrad"]), "noise 0.5": contrast(noisy_maps)}
print("attribution inside / outside the target:", {k: round(v, 2) for k, v in sg_contrast.items()})
assert sg_contrast["noise 0.5"] < sg_contrast["noise 0.15"]
assert sg_contrast["noise 0.5"] < 0.5 * sg_contrast["plain gradient"]

# 3. Integrated Gradients with a grey and with a mean baseline
for b in ["black", "grey", "mean"]:  # black is the default baseline: section 4's map
    ig_b = shape_maps["IG"] if b == "black" else np.abs(attribution.integrated_gradients(
        shapes_model, sx, sy, baseline=b, steps=IG_STEPS))
    print(f"IG, {b:>5} baseline: {mass_inside(ig_b):.1%} of the map's mass inside the target")

# 4. IG of a linear model is (x - x') * w for any number of steps
keras.utils.set_random_seed(0)
linear = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                           keras.layers.Dense(2)])
w = linear.layers[-1].get_weights()[0]
x_lin = np.random.default_rng(0).uniform(0, 1, (1, 4, 4, 1)).astype("float32")
exact = x_lin[0, ..., 0] * w[:, 1].reshape(4, 4)
for n_steps in (1, 7):
    ig_lin = attribution.integrated_gradients(linear, x_lin, targets=[1], steps=n_steps)[0]
    print(f"{n_steps} step(s): largest difference from (x - x') w = "
          f"{np.abs(ig_lin - exact).max():.1e}")
    assert np.allclose(ig_lin, exact, atol=1e-5)
