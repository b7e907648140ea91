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
# # 02 · Intermediate activations: what each layer passes on
#
# **Goal.** Look inside a trained CNN while it looks at one image:
# 1. read out the **feature maps** of every convolutional layer (one forward pass), first by
#    hand with a Keras sub-model, then with one `course_utils` call;
# 2. show **every channel** of each layer as a small picture, with the **dead** channels
#    (zero everywhere on the image) marked;
# 3. **measure** two claims usually made about depth: lower layers keep most of the input,
#    higher layers are sparser and more abstract; keep only what the numbers support;
# 4. browse the channels with a slider (the explorer);
# 5. repeat on a real ImageNet network: VGG16, the network of the classic demonstrations
#    (offline: EfficientNet-Lite0, whose weights come with the course).
#
# **You need:** notebook 01 (the Fashion-MNIST CNN). About 2 minutes (quick mode).

# %%
# On Google Colab, install the course's package first; anywhere else this does nothing.
import sys

if "google.colab" in sys.modules:  # pragma: no cover - only on Colab
    import subprocess

    REPO = "https://github.com/what-cnns-see/what-cnns-see"  # [project.urls] in pyproject.toml
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"git+{REPO}"], check=True)

# %% tags=["parameters"]
# Parameters (CI runs set COURSE_QUICK=1: same code path, fewer images and channels)
from course_utils import config

QUICK = config.quick()
N_IMAGES = 8 if QUICK else 64  # images averaged in the depth summary
MAX_CHANNELS = 32 if QUICK else 64  # channels drawn per layer grid
NET_SIZE = 224  # VGG16 and EfficientNet-Lite0 with their classifiers take 224 x 224

# %%
import keras
import matplotlib.pyplot as plt
import numpy as np

from course_utils import data, features, models
from course_utils.features import plotting as fplot
from course_utils.widgets.features import channel_explorer

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. The idea
#
# A convolutional layer turns a stack of maps into another stack: channel $k$ of layer $l$ is
#
# $$ a^{(l)}_k = \mathrm{ReLU}\Big(\sum_j w^{(l)}_{kj} * a^{(l-1)}_j + b^{(l)}_k\Big), $$
#
# a 2-D map with the spatial layout of the input. Each channel is a *detector*: it is large
# where its pattern occurs. Nothing stops us from drawing these maps as images; this was one of
# the first tools for understanding CNNs, and it is cheap: one forward pass gives every layer.
#
# In Keras the recipe is a second model that shares the layers of the first but returns the
# intermediate outputs: `keras.Model(model.input, [layer.output for layer in ...])`.

# %%
model = models.fashion_cnn()
names = data.fashion.CLASS_NAMES
(_, _), (x_test, y_test) = data.fashion_mnist()
x = (x_test[:N_IMAGES].astype("float32") / 255.0)[..., None]  # the model takes [0, 1]
image = x[0]
conv_layers = ["conv1_relu", "conv2_relu", "conv3_relu", "conv4_relu"]
print("layers:", [layer.name for layer in model.layers])
print("image 0 is a", names[int(y_test[0])])

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### By hand: a sub-model with several outputs

# %%
taps = keras.Model(model.input, [model.get_layer(n).output for n in conv_layers])
by_hand = taps.predict(image[None], verbose=0)
for n, a in zip(conv_layers, by_hand):
    print(f"{n:<12} {a.shape}")

# %% [markdown]
# `course_utils.features.activations` does the same in one compiled pass (and also works on
# nested models, e.g. an `applications` base inside a `Sequential`). Same numbers:

# %%
acts = features.activations(model, image, conv_layers)
for n, a in zip(conv_layers, by_hand):
    assert np.allclose(acts[n], a, atol=1e-4), n
print("identical to the sub-model for", len(conv_layers), "layers")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. Every channel of every layer
#
# Each small square is one channel, scaled to its own minimum and maximum (so a weak channel is
# as visible as a strong one; the raw values stay in the arrays). A red frame and "dead" mark a
# channel that is zero everywhere on this image.

# %%
plt.imshow(image[..., 0], cmap="gray")
plt.title(f"input: {names[int(y_test[0])]}")
plt.axis("off")
plt.show()
for n in conv_layers:
    fplot.plot_channels(acts[n][0], layer=n, max_channels=MAX_CHANNELS, ncols=16)
    plt.show()

# %% [markdown]
# **What to notice.**
# - `conv1_relu` (28 × 28): most channels are still recognisably the garment: copies of the
#   input, its edges in one direction or another, its dark or bright parts.
# - `conv2_relu`, `conv3_relu` (14 × 14): blobs and parts; the outline is harder to see.
# - `conv4_relu` (7 × 7): coarse maps; which channels are on says more than what they look like.
#   This is what the classifier (global average pooling, then a dense layer) reads.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. Measuring the claims about depth
#
# Two things are usually said about the layers of a CNN:
# 1. *lower layers keep almost all of the information in the picture*;
# 2. *higher layers are sparser*: more activations are zero, and some channels do not fire
#    at all, because the pattern they detect is absent.
#
# `features.depth_summary` measures, per layer:
# - `zeros`: the fraction of activations that are exactly 0 (after the ReLU);
# - `dead ch`: the fraction of channels that are 0 everywhere on the image;
# - `input corr`: how much the input still shows: each channel map is resized to 28 × 28 and
#   correlated with the input; the value is the mean |correlation| of the best 10 % channels.
#
# One image is an anecdote, so we average over several test images.

# %%
summary = features.depth_summary(model, x, conv_layers)
print(summary)
fplot.plot_depth_summary(summary)
plt.show()

# %%
corr, zeros, dead = summary.input_corr, summary.zero_fraction, summary.dead_channels
# Claim 1: the first layer keeps the input best, clearly better than every deeper layer.
assert corr[0] > 0.7 and corr[0] > corr[1:].max() + 0.1, corr
# Claim 2 (sparsity), in the weak form that holds here: deeper layers have more zeros than
# conv1 on average.
assert zeros[1:].mean() > zeros[0], zeros
print(f"input corr: conv1 {corr[0]:.2f} -> deeper {np.round(corr[1:], 2)}")
print(f"zeros: conv1 {zeros[0]:.2f} -> deeper {np.round(zeros[1:], 2)}")
print(f"dead channels per layer: {np.round(dead, 3)}")

# %% [markdown]
# **What the numbers say (honestly).**
# - Claim 1 holds: `conv1` correlates strongly with the input; every deeper layer much less.
#   The decline is not strictly monotone, though: `conv4` (7 × 7, after global pooling is
#   trained on it) can correlate a little more than `conv3` on some images, because a coarse
#   map of "where the garment is" still resembles a blurred garment.
# - Claim 2 holds only in a weak form here: there are more zeros after `conv1`, but the fraction
#   stays near one half and does not keep growing; and this small network, trained with batch
#   normalization, has (almost) **no dead channels** on Fashion-MNIST. Every one of its channels
#   fires somewhere on a garment. Dead channels are a feature of big networks looking at images
#   far from what a channel detects (see the ImageNet network below, and the exercises).

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### The same on the shapes CNN
#
# A second trained network (64 × 64 colour images of shapes, notebook 01) to see whether the
# pattern is a property of Fashion-MNIST or of CNNs.

# %%
shapes_model = models.shapes_cnn()
shapes = data.shapes(N_IMAGES, seed=1)
shapes_layers = ["conv1_relu", "conv2_relu", "conv3_relu", "conv4_relu"]
shapes_summary = features.depth_summary(shapes_model, shapes.images, shapes_layers)
print(shapes_summary)
s_acts = features.activations(shapes_model, shapes.images[0], ["conv1_relu", "conv4_relu"])
plt.imshow(shapes.images[0])
plt.title("shapes image 0")
plt.axis("off")
plt.show()
for n, a in s_acts.items():
    fplot.plot_channels(a[0], layer=n, max_channels=MAX_CHANNELS, ncols=16)
    plt.show()

# %%
s_corr, s_zeros = shapes_summary.input_corr, shapes_summary.zero_fraction
assert s_corr[0] > s_corr[-1], s_corr  # the first layer keeps more of the input than the last
assert s_zeros[-1] > s_zeros[0], s_zeros  # and the last layer is sparser than the first
print("shapes CNN, input corr per layer:", np.round(s_corr, 2))
print("shapes CNN, zeros per layer:     ", np.round(shapes_summary.zero_fraction, 2))

# %% [markdown]
# **What to notice.** Here both claims look closer to the textbook: the input correlation
# falls layer by layer and the last layer has the most zeros (about two thirds against one
# half). But the middle layers stay near one half, and again no channel is dead on these
# images. Whether sparsity grows with depth depends on the network and its training (batch
# normalization re-centres every layer, which keeps roughly half of each layer positive), so it
# is a tendency, not a law.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. Explore: every channel, one slider
#
# All layers are computed once when the explorer is built; moving the slider only picks a
# channel and redraws (the status line shows the time). Change the layer in the menu.

# %%
explorer = channel_explorer(model, image, conv_layers)
explorer

# %%
u1 = explorer.set(layer="conv4_relu", channel=7)
u2 = explorer.set(layer="conv1_relu", channel=3)
u3 = explorer.set(layer="conv4_relu", channel=7)  # a revisit
assert u3.cached and u1.shown.data == u3.shown.data and u2.shown.data != u1.shown.data
assert np.allclose(u2.result["map"], acts["conv1_relu"][0, ..., 3])
print(f"slider updates took {max(u.seconds for u in (u1, u2, u3)):.3f} s at most")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. A real ImageNet network: VGG16, or EfficientNet-Lite0 offline
#
# The classic pictures of "what CNN layers see" come from VGG16 trained on ImageNet: 13
# convolutional layers in five blocks. Its weights (528 MB) are downloaded on first use.
# `models.load("vgg16", fallback="efficientnet_lite0")` returns the real VGG16 when its weights
# are cached or can be downloaded, and otherwise **EfficientNet-Lite0**, another real network
# pretrained on ImageNet, whose weights come with the course (it says so on screen, and every
# figure carries the label). Lite0 is a mobile network: 16 inverted-residual blocks, ReLU6
# activations (which output exact zeros, like ReLU), and at 224 px its maps go from 112 x 112
# down to 7 x 7.
#
# The two networks have different layer names, so the cell picks the layers **by role**: the
# output of an activation at each resolution, from the first layer to the last. In VGG16 these
# are the last convolution of each block; in Lite0 the first convolution of a stage (stem) and
# the wide "expand" layers inside the blocks, then `top_activation`, which the classifier reads.

# %%
net = models.load("vgg16", fallback="efficientnet_lite0")
net_info = models.info(net)
if net_info.label:
    print(net_info.label)
LAYERS = {  # shallow -> deep, one activation output per resolution
    "vgg16": ["block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"],
    "efficientnet_lite0": ["stem_activation", "block2b_expand_activation",
                           "block3b_expand_activation", "block5c_expand_activation",
                           "top_activation"],
}[net_info.name]
cat = data.sample_image("chelsea", size=NET_SIZE)
probs = net.predict(net_info.preprocess(cat[None]), verbose=0)
print(f"{net_info.name} sees:",
      ", ".join(f"{n} {p:.2f}" for _, n, p in models.decode(net_info.name, probs, top=3)[0]))
net_acts = features.activations(net, cat, LAYERS)
for n in (LAYERS[0], LAYERS[2], LAYERS[-1]):
    fplot.plot_channels(net_acts[n][0], layer=n, label=net_info.label,
                        max_channels=MAX_CHANNELS // 2, ncols=16)
    plt.show()
sides = [a.shape[1] for a in net_acts.values()]
assert all(a == 2 * b for a, b in zip(sides, sides[1:])), sides  # each step halves the maps
print("map sizes, shallow -> deep:", sides)

# %% [markdown]
# **What to notice** (EfficientNet-Lite0 on the cat, which it calls Egyptian cat 0.40, tiger
# cat 0.33, tabby 0.17).
# - The first layer (`stem_activation`, 112 x 112) is still the photo: the eyes, the stripes
#   of the fur, the bright and dark parts, each channel with another contrast or edge
#   direction. A few channels are already dead on this photo (5 of 32).
# - In the middle (`block3b_expand_activation`, 28 x 28) a few channels still show the eyes;
#   most are scattered spots where some texture of the fur occurs, each channel elsewhere.
# - `top_activation` (7 x 7, 1280 channels) is mostly blank: about two thirds of the channels
#   are zero at all 49 positions, and the ones that fire mark a few cells. Which channels
#   fire, not what their maps look like, is what the classifier reads.
#
# The classic VGG16 demonstrations describe the same progression (edges and colours in
# `block1`, textures and parts in `block3`/`block4`, a sparse `block5`); this lesson was
# checked on Lite0 only, since VGG16's weights were not available.

# %%
net_summary = features.depth_summary(net, cat, LAYERS)
print(net_summary)
fplot.plot_depth_summary(net_summary)
plt.show()
n_corr, n_zeros, n_dead = net_summary.input_corr, net_summary.zero_fraction, \
    net_summary.dead_channels
print(f"zeros, shallow -> deep:      {np.round(n_zeros, 3)}")
print(f"input corr, shallow -> deep: {np.round(n_corr, 3)}")
print(f"dead channels:               {np.round(n_dead, 3)}")
# Sparsity grows with depth: the two deepest layers have more zeros than any of the three
# shallow ones, and the deepest has the most.
assert n_zeros[3] > n_zeros[:3].max() + 0.15 and n_zeros[4] > n_zeros[3] + 0.1, n_zeros
# The first layer keeps the input far better than the deepest one, and best of all.
assert n_corr[0] > n_corr[-1] + 0.4 and n_corr[0] == n_corr.max(), n_corr
# Many of the deepest layer's channels are blank on this photo.
assert n_dead[-1] > 0.3, n_dead
print(f"zeros: layer 4 minus the most of layers 1-3 {n_zeros[3] - n_zeros[:3].max():.3f} "
      f"(asserted > 0.15); layer 5 minus layer 4 {n_zeros[4] - n_zeros[3]:.3f} (> 0.1)")
print(f"input corr: first minus deepest {n_corr[0] - n_corr[-1]:.3f} (asserted > 0.4)")
print(f"dead channels in the deepest layer {n_dead[-1]:.3f} (asserted > 0.3)")

# %% [markdown]
# **What the numbers say** on EfficientNet-Lite0. Each quantity was measured in quick mode under
# three numerical settings (default / `TF_ENABLE_ONEDNN_OPTS=0` / `ONEDNN_MAX_CPU_ISA=AVX2`);
# the three agree to the third decimal, and every bound sits well inside the measured value.
# - **The first layer keeps the input, the deep ones do not.** `input corr` (the mean
#   |correlation| of the best 10 % of a layer's maps with the photo's luminance) is 0.991 for
#   `stem_activation` and 0.254 for `top_activation` (measured: 0.991 / 0.991 / 0.991 and
#   0.254 / 0.254 / 0.254; asserted: first minus deepest > 0.4, measured 0.737 in all three,
#   and the first layer is the highest). In between it does not fall at every step: the
#   56 x 56 and 28 x 28 layers are about equal (0.59, 0.61).
# - **Sparsity grows with depth, from the middle on.** `zeros` (the fraction of activations
#   exactly 0; ReLU6 outputs exact zeros) is 0.30, 0.28, 0.30 for the three shallow layers,
#   then 0.63 at 14 x 14 and 0.94 at the top (measured the same in all three settings). The
#   14 x 14 layer is above the three shallow ones by 0.331 / 0.331 / 0.331 (asserted > 0.15),
#   the top above the 14 x 14 layer by 0.301 / 0.301 / 0.301 (asserted > 0.1). It does not
#   grow at every step: the 56 x 56 layer has slightly fewer zeros than the first one.
# - **Dead channels**: 0.639 / 0.639 / 0.639 of the 1280 `top_activation` channels are zero
#   everywhere on the photo (asserted > 0.3): their pattern is not in it. That is the sparsity
#   the deep layers are known for, and which the small Fashion-MNIST network above does not
#   show. (The first layer has a few dead channels too, 5 of 32; the middle ones almost none.)
#
# On VGG16 the cell asserts the same claims with the same bounds; those bounds were measured on
# Lite0 only (VGG16's weights were not available where this lesson was checked).

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Exercises
#
# 1. Draw the channels of `conv1` (before batch normalization and ReLU) next to `conv1_relu`.
#    What does the ReLU remove?
# 2. Feed the Fashion-MNIST network an image it was never meant to see: pure noise, or a
#    blank (all-zero) image. Count the dead channels per layer with `features.dead_channels`.
# 3. Find the channel of `conv4_relu` whose mean activation differs most between trousers
#    and sandals (average over 50 test images of each class). Show both maps in the explorer.
# 4. Why does `input corr` for a 7 × 7 layer have a ceiling well below 1 even for a perfect
#    "copy" of the input? (Hint: what happens when you shrink a 28 × 28 image to 7 × 7 and
#    blow it up again?)
#
# <details><summary>Solutions</summary>
#
# The hidden code cell below (click it to open) runs solutions 1-4 and checks their answers.
#
# 1. Take the activations of `conv1` and `conv1_relu` with `features.activations` and draw
#    both with `fplot.plot_channels`: `conv1` is negative on the "wrong" side of its edges
#    (about two thirds of its values where the image is not blank; it is exactly 0 on blank
#    background, as the layer has no bias). Batch norm shifts the values and the ReLU sets every
#    negative one to 0 (about half of `conv1_relu` is 0), so half-planes of an edge detector
#    disappear.
# 2. On a blank image each `conv1` channel is a constant (its batch-norm shift, as the
#    convolution of zeros is 0), so it is dead everywhere or alive everywhere: about a third
#    of `conv1` dies (38 % here), but deeper layers (padding makes the borders differ) keep
#    most channels alive (at most about a tenth dead), and noise does the same. Dead channels
#    are rarer in this small batch-normalized network than the claim suggests.
# 3. Average each `conv4_relu` channel over 50 trousers and over 50 sandals and take the
#    channel with the largest difference (channel 102 in our run: a difference of 2.0, the
#    median channel's is 0.35); show it in `channel_explorer` for a trouser and for a sandal.
# 4. Shrinking averages away the fine detail; the best a 7 × 7 map can do is correlate with a
#    blurred input, and the blurred and the sharp input differ: even the perfect copy (the
#    image averaged down to 7 × 7) reaches an `input corr` of only 0.84 (0.95 at 14 × 14). Compare
#    layers of the
#    same size, or compute the correlation with the resized input instead.
#
# </details>

# %% jupyter={"source_hidden": true} tags=["solution"]
# 1. What the ReLU removes: the negative values of the (batch-normalized) maps
pre = features.activations(model, image, ["conv1", "conv1_bn", "conv1_relu"])
fplot.plot_channels(pre["conv1"][0], max_channels=16, layer="conv1 (before BN and ReLU)")
fplot.plot_channels(pre["conv1_relu"][0], max_channels=16, layer="conv1_relu")
on_garment = np.abs(pre["conv1"][0]).max(axis=-1) > 0  # conv1 has no bias: 0 on blank areas
for k in ("conv1", "conv1_bn", "conv1_relu"):
    v = pre[k][0]
    print(f"{k:>10}: negative {np.mean(v < 0):.1%}, exactly zero {np.mean(v == 0):.1%}, "
          f"negative where the 3 x 3 neighbourhood is not blank {np.mean(v[on_garment] < 0):.1%}")
assert np.mean(pre["conv1"][0][on_garment] < 0) > 0.3  # conv1 has its negative side...
assert pre["conv1_relu"].min() >= 0 and np.mean(pre["conv1_relu"] == 0) > 0.3  # ...ReLU cuts it

# 2. Dead channels on a blank image and on noise
blank = np.zeros((28, 28, 1), "float32")
noise = np.random.default_rng(0).uniform(0, 1, (28, 28, 1)).astype("float32")
dead_on = {}
for what, img in [("blank", blank), ("noise", noise)]:
    a = features.activations(model, img, conv_layers)
    dead_on[what] = {n: float(features.dead_channels(v[0]).mean()) for n, v in a.items()}
    print(what, {n: f"{d:.0%}" for n, d in dead_on[what].items()})
assert 0.15 < dead_on["blank"]["conv1_relu"] < 0.6
assert max(dead_on["blank"][n] for n in conv_layers[1:]) < 0.25
assert max(dead_on["noise"].values()) < 0.25

# 3. The conv4_relu channel that tells trousers (1) from sandals (5)
def sel(c):
    return (x_test[y_test == c][:50] / 255.0)[..., None].astype("float32")


m = features.activations(model, np.concatenate([sel(1), sel(5)]), ["conv4_relu"])
m = m["conv4_relu"].mean(axis=(1, 2))
diff = np.abs(m[:50].mean(0) - m[50:].mean(0))
k = int(np.argmax(diff))
print(f"channel {k}: mean difference {diff[k]:.2f}, median over channels {np.median(diff):.2f}")
assert diff[k] > 3 * np.median(diff)
trouser_view = channel_explorer(model, sel(1)[0], ["conv4_relu"]).set(channel=k)
sandal_view = channel_explorer(model, sel(5)[0], ["conv4_relu"]).set(channel=k)

# 4. The ceiling of `input corr` at 7 x 7: the image itself, averaged down to 7 x 7
copy7 = image.reshape(7, 4, 7, 4, 1).mean(axis=(1, 3))
copy14 = image.reshape(14, 2, 14, 2, 1).mean(axis=(1, 3))
ceiling7, ceiling14 = features.input_correlation(copy7, image), features.input_correlation(
    copy14, image)
print(f"input corr of a perfect copy: 7 x 7 {ceiling7:.2f}, 14 x 14 {ceiling14:.2f}")
assert ceiling7 < 0.95 and ceiling7 < ceiling14
