# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] slideshow={"slide_type": "slide"}
# # 05 · Occlusion: hide a patch, watch the answer
#
# **Goal.** Explain a prediction with nothing but forward passes (Zeiler & Fergus 2014):
# 1. slide a patch over the image and record how much the class score **drops**: the core is
#    a double loop, then one `course_utils` call;
# 2. see that the *answer itself* moves as the patch moves ("which brand is this car?" is
#    answered by the logo until you cover it);
# 3. choose the **patch size and stride**: resolution against cost, and why overlapping
#    windows must be averaged;
# 4. understand what the **fill value** means: the grey square is an input too;
# 5. check the maps against ground truth, then run the method on an ImageNet network.
#
# **You need:** notebook 01 (the Fashion-MNIST CNN); notebook 04 helps. About 1-2 minutes.

# %%
# On Google Colab, install the course's package first; anywhere else this does nothing.
import sys

if "google.colab" in sys.modules:  # pragma: no cover - only on Colab
    import subprocess

    REPO = "https://github.com/what-cnns-see/what-cnns-see"  # [project.urls] in pyproject.toml
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"git+{REPO}"], check=True)

# %% tags=["parameters"]
# Parameters (CI runs set COURSE_QUICK=1: same code path, fewer images)
from course_utils import config

QUICK = config.quick()
N_SHAPES = 12 if QUICK else 48  # shapes images for the ground-truth check
IMAGENET_MODEL = "mobilenet_v2" if QUICK else "xception"

# %%
import keras
import matplotlib.pyplot as plt
import numpy as np

from course_utils import attribution, data, metrics, models, widgets
from course_utils.attribution.occlusion import windows
from course_utils.widgets import show_panels

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. The idea
#
# Gradients (notebook 04) ask what an *infinitesimal* change would do. Occlusion makes a real
# change: cover a $p \times p$ window $w$ with a fill colour and measure the drop of the class
# score $S_c$ (the logit):
#
# $$ \Delta_w = S_c(x) - S_c(x \text{ with } w \text{ filled}), \qquad
#    M(i, j) = \frac{1}{|\{w \ni (i,j)\}|}\sum_{w \ni (i, j)} \Delta_w . $$
#
# A large positive drop: the model needed what was under the patch. A negative one: the patch
# hid something that spoke *against* the class. It is an engineering technique rather than a
# mathematical one: it needs no gradient, works on any model, and costs one forward pass per
# window position. It also needs the class of interest, chosen beforehand.

# %%
model = models.fashion_cnn()
names = data.fashion.CLASS_NAMES
(_, _), (x_test, y_test) = data.fashion_mnist()
x = (x_test[:6].astype("float32") / 255.0)[..., None]
labels = y_test[:6].astype("int64")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### The core, by hand
#
# A 7-pixel patch moved in steps of 7 gives a 4 × 4 grid of positions on a 28 × 28 image.
# Each covered copy goes through the network; the logit of the true class is read out.

# %%
logit_model = keras.Model(model.input, model.get_layer("logits").output)  # S_c, no softmax
logits_of = lambda imgs: logit_model.predict(imgs, verbose=0)  # noqa: E731
patch, grey = 7, 0.5
image, cls = x[0], int(labels[0])
covered = []
for top in range(0, 28, patch):
    for left in range(0, 28, patch):
        c = image.copy()
        c[top:top + patch, left:left + patch] = grey
        covered.append(c)
scores = logits_of(np.stack(covered))[:, cls]
drops_by_hand = (logits_of(image[None])[0, cls] - scores).reshape(4, 4)
print(np.round(drops_by_hand, 1))

# %% [markdown]
# `course_utils` does the same in compiled batches and paints every pixel with the drop of the
# window that covered it (the average of the windows, when they overlap):

# %%
occ = attribution.occlusion(model, image, cls, window=patch, stride=patch, fill="grey")[0]
print("library, one pixel per window:\n", np.round(occ[::patch, ::patch], 1))
assert np.allclose(occ[::patch, ::patch], drops_by_hand, atol=1e-2)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. The answer moves as the patch moves
#
# The lecture asks "which brand is this car?": the network answers from the logo, and covering
# the logo changes the answer while covering the tyres does not. Occlusion is that experiment
# made systematic. Here we record not only the drop but the **new prediction** at every patch
# position.

# %%
def answer_map(img, patch, stride):
    wins = windows(img.shape[:2], (patch, patch), (stride, stride))
    copies = np.repeat(img[None], len(wins), axis=0)
    for c, (t, left, h, w) in zip(copies, wins):
        c[t:t + h, left:left + w] = grey
    return wins, model.predict(copies, verbose=0).argmax(axis=1)


fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
changed = []
for ax, idx in zip(axes, [0, 2, 4]):
    img, true = x[idx], int(labels[idx])
    wins, answers = answer_map(img, 10, 6)
    ax.imshow(img[..., 0], cmap="gray_r")
    for (t, left, h, w), a in zip(wins, answers):
        if a != true:
            ax.add_patch(plt.Rectangle((left - 0.5, t - 0.5), w, h, fill=False, ec="red", lw=0.8))
            ax.text(left + w / 2, t + h / 2, names[a][:5], fontsize=6, ha="center",
                    va="center", color="red")
    changed.append(float((answers != true).mean()))
    ax.set_title(f"{names[true]}: answer changes at {int(100 * changed[-1])}% of positions",
                 fontsize=9)
    ax.axis("off")
plt.show()
assert max(changed) > 0  # some position must matter...
assert min(changed) < 1  # ...and not all of them

# %% [markdown]
# **What to notice.** Most positions leave the answer alone; a few, on the parts that make
# the class, flip it (red boxes, with the new answer). Where the flips are is the explanation.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. Patch size and stride
#
# The patch must be big enough to hide a *part* (a collar, a heel), small enough to localize.
# The stride sets the resolution and the cost: $\lceil (H - p)/s \rceil + 1$ positions per axis,
# one forward pass each. When the stride is smaller than the patch, each pixel is covered by
# several windows and the map must **average** them; summing instead would make the centre of
# the image brighter just because more windows cover it.

# %%
settings = [(3, 1), (7, 2), (7, 7), (14, 7)]
occ_maps = [attribution.occlusion(model, image, cls, window=p, stride=s)[0] for p, s in settings]
passes = [len(windows((28, 28), (p, p), (s, s))) for p, s in settings]
show_panels(image, occ_maps, [f"patch {p}, stride {s}: {n} passes"
                            for (p, s), n in zip(settings, passes)], model=model, signed=True,
          size=2.8)
assert passes == [26 * 26, 12 * 12, 4 * 4, 3 * 3]

# %% [markdown]
# **What to notice.** A 3-pixel patch hides too little: most single positions barely move the
# score and the map is faint and noisy. A 14-pixel patch is blunt. Patch 7 with stride 2 is a
# good compromise here; on 224-pixel photos, patches of 15-32 pixels with strides of 8-16 are
# usual.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. What the grey value means
#
# The filled patch is not "nothing": it is a new input. Grey is a guess of a neutral colour;
# black, the image's mean colour or a blurred copy are other guesses. On Fashion-MNIST the
# background *is* black, so a black patch on the background changes nothing at all, while a
# grey patch there adds a grey square the network may react to.

# %%
fills = {"grey": "grey", "black": "black", "mean colour": "mean", "blurred copy": "blur"}
fill_maps = {k: attribution.occlusion(model, image, cls, window=7, stride=2, fill=v)[0]
             for k, v in fills.items()}
show_panels(image, list(fill_maps.values()), [f"fill: {k}" for k in fill_maps], model=model,
          signed=True, size=2.8)

touched = np.zeros((28, 28), bool)  # pixels covered by some window that hides garment
for t, left, h, w in windows((28, 28), (7, 7), (2, 2)):
    if image[t:t + h, left:left + w].max() > 0:
        touched[t:t + h, left:left + w] = True
only_empty = ~touched  # every window over these pixels hid pure black background
print("pixels covered only by windows on pure background:", int(only_empty.sum()))
print("largest |drop| there, black fill:", float(np.abs(fill_maps["black"][only_empty]).max()))
print("largest |drop| there, grey fill: ",
      round(float(np.abs(fill_maps["grey"][only_empty]).max()), 3))
assert only_empty.any() and np.abs(fill_maps["black"][only_empty]).max() < 1e-4

# %% [markdown]
# **What to notice.** The black fill is silent wherever it covers black background (nothing
# changed), the grey fill is not: there the map measures the network's reaction to a grey
# square, not the importance of the background. Always say which fill you used.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. Ground truth: the shapes
#
# On the synthetic shapes we know where the target is. The drop should be largest when the
# patch covers it: we compare the mean of the map inside the target with the mean outside,
# and ask where the largest drop lies (the pointing game of notebook 09, strictly and with a
# tolerance of 4 px, the paper's 15 px at 224 px scaled to these 64 px images).

# %%
shapes_model = models.shapes_cnn()
sx, sy, smask = data.shapes(N_SHAPES, seed=7)
smaps = attribution.occlusion(shapes_model, sx, sy, window=12, stride=4, fill="mean")
inside = np.array([m[k].mean() for m, k in zip(smaps, smask)])
outside = np.array([m[~k].mean() for m, k in zip(smaps, smask)])
peak_strict = metrics.pointing_game(smaps, smask).mean()  # the largest drop on the target
peak_near = metrics.pointing_game(smaps, smask, tolerance=4).mean()  # or within 4 px of it
print(f"mean drop inside the target {inside.mean():.2f}, outside {outside.mean():.2f}")
print(f"the largest drop lies on the target in {100 * peak_strict:.0f} % of images, "
      f"on it or within 4 px in {100 * peak_near:.0f} %")
assert (inside > outside).mean() >= 0.8
assert peak_near >= 0.9

show_panels(np.concatenate([sx[:4], sx[:4]]), [None] * 4 + list(smaps[:4]),
          [data.synthetic.CLASS_NAMES[c] for c in sy[:4]] + ["occlusion"] * 4,
          model=shapes_model, signed=[False] * 4 + [True] * 4, ncols=4, size=2.4)

# %% [markdown]
# **What to notice.** Every image loses more score inside its target than outside it, and the
# largest drop lies on the target or next to it (within 4 px) in every image we measured, over
# models trained with and without oneDNN and with another seed. Strictly *on* the target it
# lies in only 73-86 % of the images, depending on the training: a 12 px patch centred just
# outside a small target still covers most of it, so the peak of the map can sit on the
# target's border. The patch size is the resolution of the answer.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5b. RISE: occlusion with random masks
#
# Occlusion hides one square at a time. RISE (Petsiuk, Das & Saenko 2018) hides **many random
# parts at once**: each of $N$ masks $M_i$ is a coarse grid of cells (7 × 7 here), each kept
# with probability $p = 0.5$, smoothed and shifted at random; the masked image $M_i \odot x$
# (black where the mask is 0) is scored, and every pixel averages the scores of the masks that
# kept it:
#
# $$ \text{RISE}(i, j) = \frac{1}{N p}\sum_{k=1}^{N} S_c(M_k \odot x)\, M_k(i, j). $$
#
# A pixel the class needs is kept by the high-scoring masks. No window size to choose, but
# $N$ forward passes per image, and the map is noisy until $N$ is large. We score the maps
# with the deletion curve of notebook 09: delete pixels in the map's order and measure the
# area under the class probability (lower: the map found what the model needs).

# %%
RISE_MASKS = 300  # random masks per image (one forward pass each)
rmaps = attribution.rise(shapes_model, sx, sy, n_masks=RISE_MASKS, seed=0)
deletion_auc = {name: metrics.deletion(shapes_model, sx, m, sy).auc.mean()
                for name, m in [("RISE", rmaps), ("occlusion", smaps),
                                ("random", metrics.random_maps(sx.shape[:3], seed=0))]}
print("deletion AUC (lower is better):",
      ", ".join(f"{k} {v:.3f}" for k, v in deletion_auc.items()))
assert deletion_auc["RISE"] < deletion_auc["random"] - 0.1
assert abs(deletion_auc["RISE"] - deletion_auc["occlusion"]) < 0.05
show_panels(np.concatenate([sx[:4], sx[:4]]), [None] * 4 + list(rmaps[:4]),
            [data.synthetic.CLASS_NAMES[c] for c in sy[:4]] + ["RISE"] * 4,
            model=shapes_model, signed=False, ncols=4, size=2.4)  # the ranking, not the level

# %% [markdown]
# **What to notice.** RISE's deletion area is well below random maps' (measured 0.20-0.21
# against 0.58-0.61 on the quick run's 12 images, with two sets of masks and two trainings of
# the model, the default and `COURSE_TRAIN_SEED=1`; 0.35 against 0.51 on the full run's 48,
# a harder set) and within 0.02 of occlusion's: two ways of hiding parts of the image agree
# on what matters. The RISE
# maps are smoother than occlusion's: the masks have no edges of their own. Their values are
# logits averaged over the masks that keep a pixel, so the whole map sits near the masked
# images' average score; only the differences between pixels carry the explanation.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6. An ImageNet network, two classes on one picture
#
# On a 224-pixel photo the same call covers hundreds of positions, evaluated in batches. The
# picture holds two objects, a cat on the left and a cup of espresso on the right (the
# Grad-CAM paper's demonstration), and we explain both classes: a faithful map of "espresso"
# should drop when the cup is hidden, not when the cat is. Without the seeds' network's weights
# (offline), `fallback=` shows EfficientNet-Lite0 instead, a real ImageNet network whose
# weights come with the course; the figures say which network you see.

# %%
net = models.load(IMAGENET_MODEL, fallback="efficientnet_lite0")
net_info = models.info(net)
if net_info.label:
    print(net_info.label)
size = models.input_size(net_info.name)
pair, halves = data.two_photos("chelsea", "coffee", size=size)
xp = net_info.preprocess(pair[None].copy())[0]
CAT, ESPRESSO = 285, 967  # "Egyptian cat", "espresso"
top = models.decode(net_info.name, net.predict(xp[None], verbose=0), top=5)[0]
print("top-5:", [(name, round(p, 3)) for _, name, p in top])
win = size // 8 if QUICK else size // 10
pair_occ = attribution.occlusion(net, np.stack([xp, xp]), [CAT, ESPRESSO], window=win,
                                 stride=win // 2, fill="grey")
n_pass = len(windows((size, size), (win, win), (win // 2, win // 2)))
own = metrics.energy_in_mask(pair_occ, halves)  # share of the positive drops on each object
print(f"share of the score drops on its own object: cat {own[0]:.2f}, espresso {own[1]:.2f}")
print(f"largest drop: cat {pair_occ[0].max():.2f}, espresso {pair_occ[1].max():.2f} (logits)")
assert own[1] > 0.9  # hiding the cup, and only the cup, lowers "espresso"
show_panels(pair, [None, *pair_occ], ["input", f"occlusion: {net_info.class_names[CAT]}",
                                      f"occlusion: {net_info.class_names[ESPRESSO]}"],
            model=net, signed=[False, True, True], size=3.2,
            suptitle=f"patch {win} px, stride {win // 2}: {n_pass} passes")

# %% [markdown]
# **What to notice.** For "espresso" nearly all of the drops lie on the cup (measured with
# EfficientNet-Lite0: 0.98 of the positive drops with a 28 px patch, 1.00 with 32 px, the same
# with and without oneDNN and with AVX2 kernels): hide part of the cup and the score falls,
# hide the cat and nothing happens. For the cat the picture is less clean (0.41-0.46 on the
# cat): the cat fills its half and is the network's top class by far, so no single patch hides
# enough of it to matter much, and the small drops spread over both halves. Occlusion answers
# "which patch, taken away alone, costs the score most", and evidence that is everywhere is
# never costly to lose one patch of.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 7. Explore: patch size, stride and fill

# %%
j = 1
occ_view = widgets.occlusion_explorer(shapes_model, sx[j], int(sy[j]),
                                      windows=(4, 8, 12, 16, 24), strides=(2, 4, 8))
occ_view.warm(fill=["grey"])
occ_view

# %%
a = occ_view.set(window=4, stride=2, fill="grey")
b = occ_view.set(window=16, stride=8)
assert a.cached and b.cached and not np.allclose(a.result, b.result)
c = occ_view.set(fill="black")
assert not c.cached
print(f"update from cache: {1000 * b.seconds:.0f} ms; computed: {1000 * c.seconds:.0f} ms")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Exercises
# 1. How many forward passes does occlusion need on a 224 × 224 image with a 32-pixel patch
#    and stride 8? And with stride 16?
# 2. Find a Fashion-MNIST test image that the model gets **wrong**. Which patches, when
#    covered, give the right answer back?
# 3. Replace the average over overlapping windows by a sum (hint: `occlusion.spread` is the
#    average). What artefact appears with patch 14, stride 2?
# 4. Occlusion versus gradients: which of the two would notice a feature that matters only
#    when *two* distant parts are both present?
#
# <details><summary>Solutions</summary>
#
# The hidden code cell below (click it to open) runs solutions 1-3 and checks their answers.
#
# 1. $\lceil (224 - 32)/8 \rceil + 1 = 25$ positions per axis: 625 passes; with stride 16,
#    13 per axis: 169 passes (count them with `windows`).
# 2. Predict the first test images, keep those the model gets wrong, and run `answer_map` on
#    them: positions where the new answer equals the true label are patches that hid the
#    misleading part (in our run 40 of the first 500 test images are wrong, and for 6 of the
#    first 8 of them some 10 × 10 patch gives the right answer back).
# 3. Centre pixels are covered by up to 49 windows, corner pixels by one: a sum paints a
#    bright square in the middle of every map, whatever the model does (the summed map
#    correlates 0.93 with the coverage count, the averaged one 0.21).
# 4. Neither, fully: covering either part removes the feature, so occlusion sees both parts
#    (each drop is large); a gradient at the full image sees them too, but only to first
#    order. Occlusion with large patches, or LIME (notebook 06), which hides many parts at
#    once, tests interactions more directly.
# </details>

# %% jupyter={"source_hidden": true} tags=["solution"]
# 1. Forward passes for a 32-pixel patch on 224 x 224
n8 = len(windows((224, 224), (32, 32), (8, 8)))
n16 = len(windows((224, 224), (32, 32), (16, 16)))
print(f"stride 8: {n8} passes, stride 16: {n16} passes")
assert (n8, n16) == (625, 169)

# 2. Wrong answers, and the patches that give the right answer back
xs = (x_test[:500].astype("float32") / 255.0)[..., None]
ys = y_test[:500].astype("int64")
wrong = np.flatnonzero(model.predict(xs, verbose=0).argmax(1) != ys)
restored = []
for idx in wrong[:8]:
    wins, answers = answer_map(xs[idx], 10, 6)
    restored.append(int((answers == ys[idx]).sum()))
print(f"{len(wrong)} of {len(xs)} test images wrong; positions that restore the true label "
      f"in the first {len(restored)}: {restored}")
assert len(wrong) > 0 and np.mean(np.array(restored) > 0) >= 0.5

# 3. A sum instead of an average, patch 14, stride 2
from course_utils.attribution.occlusion import window_masks

wins14 = windows((28, 28), (14, 14), (2, 2))
coverage = window_masks((28, 28), wins14).sum(axis=0)
averaged = attribution.occlusion(model, image, cls, window=14, stride=2)[0]
summed = averaged * coverage  # the sum of the drops over the windows covering each pixel
corr_avg, corr_sum = (np.corrcoef(m.ravel(), coverage.ravel())[0, 1] for m in (averaged, summed))
print(f"windows per pixel: {coverage.max():.0f} in the centre, {coverage[0, 0]:.0f} in a corner;"
      f" correlation with that count: average {corr_avg:.2f}, sum {corr_sum:.2f}")
assert coverage.max() == 49 and coverage[0, 0] == 1 and corr_sum > max(0.7, corr_avg + 0.2)
