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
# # 03 · Feature visualization: the picture a channel wants to see
#
# **Goal.** Turn the question around: instead of "what does this channel do on my image?"
# (notebook 02), ask "which image would excite this channel most?":
# 1. write **gradient ascent in input space** by hand (the classic Keras recipe), then see why
#    its pictures look like noise;
# 2. get readable pictures with the **Lucid-style** recipe: random transforms and a
#    decorrelated Fourier parameterization, side by side with the naive one;
# 3. **check** the pictures on the trained course models: each must drive its channel far above
#    what real images do, and excite its own channel more than the others do;
# 4. run it on VGG16 from `block1_conv1` to `block5_conv1`, make **class** pictures, and
#    **DeepDream** a photo over octaves;
# 5. browse the pictures of a layer with a slider.
#
# **You need:** notebooks 01 and 02. About 2 minutes (QUICK), longer with full settings.

# %% tags=["parameters"]
# Parameters (CI runs set COURSE_QUICK=1: same code path, fewer steps, smaller pictures)
from course_utils import config

QUICK = config.quick()
LUCID_STEPS = 128 if QUICK else 512  # Lucid-style optimization steps
N_CHANNELS = 8 if QUICK else 16  # channels checked on the trained models
VGG_SIZE = 48 if QUICK else 128  # picture size for VGG16 channels
VGG_STEPS = 12 if QUICK else 256
VGG_CHANNELS = 4 if QUICK else 8
DREAM_SIZE = 96 if QUICK else 224
DREAM_STEPS = 4 if QUICK else 20

# %%
import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

from course_utils import data, features, models
from course_utils.features import plotting as fplot
from course_utils.widgets.features import visualization_explorer

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. The idea: gradient ascent on the input
#
# Training changes the weights to lower a loss. Here the weights are frozen and the **input**
# changes, to raise the mean activation of one channel $k$ of layer $l$:
#
# $$ x^\star = \arg\max_x \; \frac{1}{HW}\sum_{i,j} a^{(l)}_{k}(x)_{ij}, \qquad
#    x \leftarrow x + \eta \,\frac{\nabla_x}{\lVert \nabla_x \rVert} . $$
#
# Start from grey noise, take a few dozen normalized gradient steps, clip to the valid pixel
# range. This is the recipe of the Keras book ("visualizing convnet filters").

# %%
model = models.fashion_cnn()
(_, _), (x_test, y_test) = data.fashion_mnist()
natural = (x_test[:256].astype("float32") / 255.0)[..., None]  # real images, for comparison
layer_name, channel = "conv3_relu", 5
extractor = keras.Model(model.inputs, model.get_layer(layer_name).output)


@tf.function
def ascent_step(img, lr):
    with tf.GradientTape() as tape:
        tape.watch(img)
        loss = tf.reduce_mean(extractor(img)[..., channel])
    grad = tape.gradient(loss, img)
    grad = grad / (tf.norm(grad) + 1e-8)
    return loss, tf.clip_by_value(img + lr * grad, 0.0, 1.0)


img = tf.constant(np.random.default_rng(0).uniform(0.4, 0.6, (1, 28, 28, 1)), tf.float32)
losses = []
for _ in range(30):
    loss, img = ascent_step(img, tf.constant(1.0))
    losses.append(float(loss))
by_hand = img.numpy()[0]
nat_mean = extractor.predict(natural, verbose=0)[..., channel].mean()
print(f"channel {channel} of {layer_name}: {losses[0]:.2f} -> {losses[-1]:.2f} "
      f"(mean over real images: {nat_mean:.2f})")
assert losses[-1] > 2 * losses[0] and losses[-1] > nat_mean

# %%
fig, axes = plt.subplots(1, 2, figsize=(6, 3))
axes[0].plot(losses)
axes[0].set_xlabel("step")
axes[0].set_ylabel("mean activation")
axes[1].imshow(by_hand[..., 0], cmap="gray", vmin=0, vmax=1)
axes[1].set_title(f"{layer_name} ch {channel}, by hand")
axes[1].axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# The objective rises steadily, far past what real garments reach. But the picture is mostly
# high-frequency speckle: the gradient with respect to individual pixels is dominated by fine
# patterns the network happens to be sensitive to, and nothing in the recipe prefers a natural
# looking image.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. Naive versus Lucid-style
#
# `features.visualize(..., method="naive")` is the recipe above, batched over channels.
# `method="lucid"` changes three things (Olah et al., *Feature Visualization*, Distill 2017):
# - **transformation robustness**: before each step the picture is randomly padded, jittered,
#   scaled and rotated, so a pattern survives only if it works wherever it lands;
# - **decorrelated parameterization**: the optimizer moves Fourier coefficients, scaled by
#   $1/f$, and colours decorrelated like natural photos; low frequencies are as easy to change
#   as high ones, so the steepest step is no longer speckle;
# - a smooth squashing (sigmoid) keeps pixels in range instead of clipping them.
#
# Side by side on the shapes CNN (colour inputs make the difference easiest to see):

# %%
shapes_model = models.shapes_cnn()
shapes = data.shapes(64, seed=2)
units = list(range(6))
naive = features.visualize(shapes_model, "conv3_relu", units, method="naive", progress=False)
lucid = features.visualize(shapes_model, "conv3_relu", units, method="lucid",
                           steps=LUCID_STEPS, progress=False)
fplot.plot_comparison([naive, lucid], ["naive (30 steps)", f"lucid ({LUCID_STEPS} steps)"])
plt.show()


# %%
# Two measurements of readability (course_utils.features.quality):
# - the share of spectral energy above half the Nyquist frequency (white noise ~0.75, photos ~0.05)
# - how much of its channel's response a picture keeps when moved by 2 pixels
hf_naive = np.median(features.high_frequency_share(naive.images))
hf_lucid = np.median(features.high_frequency_share(lucid.images))
hf_photos = np.median(features.high_frequency_share(shapes.images))
rob_naive = np.nanmedian(features.shift_robustness(shapes_model, naive))
rob_lucid = np.nanmedian(features.shift_robustness(shapes_model, lucid))
print(f"high-frequency energy: naive {hf_naive:.2f}, lucid {hf_lucid:.2f}, "
      f"the dataset's images {hf_photos:.2f}")
print(f"response kept after a 2 px shift: naive {rob_naive:.2f}, lucid {rob_lucid:.2f}")
assert hf_lucid < hf_naive  # the Lucid pictures are smoother

# %% [markdown]
# **What to notice.** The naive pictures are grey noise with a faint pattern; the Lucid ones
# show coloured strokes, corners and curves. The measured share of high-frequency energy says
# the same thing as the eye, and the shift test says why it matters: a picture that only works
# at its exact pixel position shows how to fool the channel, not what the channel looks for. Both raise the objective; the difference is *which* of the many
# images with a high activation you end up with.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. Are the pictures any good? Two measurements
#
# A picture is a claim about a channel; check it on the model:
# 1. **natural ratio**: the channel's activation on its picture divided by its mean activation
#    on real test images; a good picture is far above 1;
# 2. **response matrix**: $M_{cp}$ = activation of channel $c$ on the picture of channel $p$.
#    A channel's own picture should excite it more than any other channel's picture does:
#    the diagonal dominates its row.

# %%
fashion_units = list(range(N_CHANNELS))
fashion_vis = features.visualize(model, "conv3_relu", fashion_units, steps=LUCID_STEPS,
                                 progress=False)
fashion_vis.plot(title=f"Lucid pictures of conv3_relu, channels 0-{N_CHANNELS - 1}")
plt.show()
ratio = features.natural_ratio(model, fashion_vis, natural)
matrix = features.response_matrix(model, fashion_vis)
margin = features.diagonal_dominance(matrix)
fplot.plot_response_matrix(matrix, fashion_units)
plt.show()
print("natural ratio per channel:", np.round(ratio, 1))
print("diagonal margin per row:  ", np.round(margin, 2))

# %%
live = np.isfinite(ratio)
assert live.sum() >= N_CHANNELS - 1
assert np.median(ratio[live]) > 2.0 and ratio[live].min() > 1.5, ratio  # beyond real garments
assert (margin > 0).mean() >= 0.75, margin  # own picture wins in most rows
assert np.diag(matrix).mean() > 1.5 * matrix[~np.eye(len(matrix), dtype=bool)].mean()

# %% [markdown]
# **What to notice.** The pictures drive their channels about two to four times higher than
# real garments do on average (more with more steps), and the matrix is diagonal: the
# pictures are specific. Where a row is nearly tied, two channels detect nearly the same
# thing (look at their pictures).

# %% [markdown] slideshow={"slide_type": "subslide"}
# The same check on the shapes CNN pictures from section 2:

# %%
shape_ratio = features.natural_ratio(shapes_model, lucid, shapes.images)
shape_margin = features.diagonal_dominance(features.response_matrix(shapes_model, lucid))
print("shapes CNN natural ratio:", np.round(shape_ratio, 1))
print("shapes CNN diagonal margin:", np.round(shape_margin, 2))
assert np.median(shape_ratio[np.isfinite(shape_ratio)]) > 2.0
assert (shape_margin > 0).mean() >= 0.5

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. VGG16, from block 1 to block 5
#
# The famous pictures are VGG16's (and GoogLeNet's): with the real ImageNet weights,
# `block1_conv1` wants flat colours and oriented edges, `block2`/`block3` want repeated
# textures (stripes, dots, grids), `block4`/`block5` want patterns with parts of objects
# (eyes, feathers, arches). The convolutional layers take any picture size, so the pictures
# can be smaller than 224 px.
#
# Offline this is a **random-weight stand-in** (labelled on every figure): its pictures show
# what the *architecture and the method* produce, not what the network learned.

# %%
vgg = models.load("vgg16")
vgg_info = models.info(vgg)
if vgg_info.standin:
    print(vgg_info.label)
vgg_layers = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]
vgg_vis = {}
for name in vgg_layers:
    vgg_vis[name] = features.visualize(vgg, name, list(range(VGG_CHANNELS)), size=VGG_SIZE,
                                       steps=VGG_STEPS, progress=False)
fig, axes = plt.subplots(len(vgg_layers), VGG_CHANNELS,
                         figsize=(1.6 * VGG_CHANNELS + 1, 1.6 * len(vgg_layers) + 0.5))
for r, name in enumerate(vgg_layers):
    for k in range(VGG_CHANNELS):
        axes[r, k].imshow(vgg_vis[name].images[k])
        axes[r, k].set_xticks([])
        axes[r, k].set_yticks([])
    axes[r, 0].set_ylabel(name, fontsize=8)
fig.text(0.5, 0.005, vgg_info.label, ha="center", color="crimson", fontsize=9)
plt.tight_layout(rect=(0, 0.03, 1, 1))
plt.show()
for name, v in vgg_vis.items():
    assert v.images.shape == (VGG_CHANNELS, VGG_SIZE, VGG_SIZE, 3)
    assert np.isfinite(v.scores).all()

# %% [markdown]
# **What to notice.** With the stand-in, every row is a random texture whose scale grows with
# depth (the receptive field grows); that is the architecture talking. With real weights the
# rows go from colours and edges to textures and then to object-like patterns.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. Class pictures
#
# Instead of a channel, maximize a class **logit** (before the softmax, so the picture cannot
# win by suppressing the other classes): Simonyan et al. 2013. On the trained Fashion-MNIST
# network each picture should be classified as its class.

# %%
names = data.fashion.CLASS_NAMES
class_vis = features.class_visualization(model, list(range(10)), steps=LUCID_STEPS,
                                         progress=False)
class_vis.plot(ncols=10, scores=False, title="class pictures of the Fashion-MNIST CNN")
plt.show()
pred = model.predict(class_vis.pixels(), verbose=0).argmax(axis=1)
print("predicted:", [names[p] for p in pred])
assert (pred == np.arange(10)).mean() >= 0.9, pred

# %% [markdown]
# **What to notice.** The network is sure about pictures that look only vaguely like the
# garment: a few parts in the right places suffice. That is the lesson of class pictures: a
# network's idea of a class is a bundle of cues, not a template.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6. DeepDream
#
# DeepDream (Mordvintsev et al. 2015) starts from a **photo** and amplifies whatever a layer
# already sees in it: gradient ascent on the mean squared activation of a layer. To get
# patterns at several scales it works on **octaves**: dream on a small copy, upscale, add the
# detail lost by the upscaling back, dream again. Random shifts (jitter) hide the pixel grid.
# With real weights, `block4`/`block5` layers paint eyes, dog heads and arches; on the stand-in
# you see textures.

# %%
photo = data.sample_image("chelsea", size=DREAM_SIZE)
dream = features.deepdream(vgg, photo, ["block3_conv1", "block4_conv1"], octaves=3,
                           steps=DREAM_STEPS, progress=False)
fplot.plot_deepdream(photo, dream, vgg, title="DeepDream, block3_conv1 + block4_conv1")
plt.show()
assert dream.shape == photo.shape and np.abs(dream - photo).mean() > 0.5
# VGG16 with its classifier takes 224 x 224 only; its convolutional layers take any size.
# Re-wire them on a size-free input to measure what the dream did to block4_conv1:
free = h = keras.Input((None, None, 3))
for layer in vgg.layers[1:]:
    h = layer(h)
    if layer.name == "block4_conv1":
        break
block4 = keras.Model(free, h)
prep = lambda img: np.asarray(vgg_info.preprocess(img[None].copy()), "float32")  # noqa: E731
d_before = block4.predict(prep(photo), verbose=0)
d_after = block4.predict(prep(dream), verbose=0)
print(f"mean squared block4_conv1 activation: {np.mean(d_before**2):.3g} -> "
      f"{np.mean(d_after**2):.3g}")
assert np.mean(d_after**2) > np.mean(d_before**2)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 7. Explore: every channel's picture
#
# A `ChannelAtlas` computes pictures a page (16 channels) at a time and keeps them; the
# explorer then shows any of them instantly.

# %%
atlas = features.ChannelAtlas(model, steps=LUCID_STEPS, progress=False)
atlas.precompute("conv3_relu", range(16))
explorer = visualization_explorer(atlas, "conv3_relu", range(16))
explorer

# %%
a = explorer.set(channel=3)
b = explorer.set(channel=12)
c = explorer.set(channel=3)
assert c.cached and a.shown.data == c.shown.data and a.shown.data != b.shown.data

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Exercises
#
# 1. Run the by-hand ascent of section 1 with 300 steps. Does the picture become more
#    readable, or just more extreme?
# 2. Turn the Lucid recipe apart: `visualize(..., transforms=features.Transforms.none())`
#    keeps the Fourier parameterization but drops the transforms;
#    `param=features.NAIVE` does the opposite. Which ingredient matters more on the shapes CNN?
#    Use `high_freq_share` and `natural_ratio` to decide, not only your eyes.
# 3. Make the response matrix of `conv4_relu` on the Fashion-MNIST CNN. Is it more or less
#    diagonal than that of `conv3_relu`? Why could that be?
# 4. DeepDream `block1_conv1` instead of `block4_conv1`. What changes?
#
# <details><summary>Solutions</summary>
#
# 1. Loop 300 times: the objective keeps climbing, the picture gets higher contrast but stays
#    speckled. Nothing in plain ascent prefers a natural image, so more steps do not fix it.
# 2. ```python
#    a = features.visualize(shapes_model, "conv3_relu", units,
#                           transforms=features.Transforms.none(), steps=LUCID_STEPS)
#    b = features.visualize(shapes_model, "conv3_relu", units, param=features.NAIVE,
#                           steps=LUCID_STEPS)
#    high_freq_share(a.images), high_freq_share(b.images)
#    ```
#    The parameterization removes most of the speckle; the transforms make the patterns
#    robust (they often raise `natural_ratio` less, but the pictures generalize across
#    positions). Together they give the readable pictures.
# 3. `features.response_matrix(model, features.visualize(model, "conv4_relu", range(8)))`:
#    usually still diagonal, often with more near-ties: deeper channels combine the same
#    lower-level parts, so their pictures overlap more.
# 4. `features.deepdream(vgg, photo, "block1_conv1", ...)`: fine colour fringes and edge
#    textures at pixel scale instead of larger patterns; the octaves still spread them over
#    several scales.
#
# </details>
