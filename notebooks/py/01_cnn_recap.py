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
# # 01 · CNN recap: images are tensors, layers are kernels
#
# **Goal.** Before we look inside networks, recall what they compute:
# 1. an image is a tensor of numbers, height × width × channels;
# 2. a convolutional layer such as `Conv2D(3, 64, 3)` is **64 independent kernels**, each of
#    shape 3 × 3 × 3, slid over the image; we will apply one by hand with numpy and get
#    exactly Keras' answer;
# 3. a model summary can be read line by line (shapes and parameter counts are arithmetic);
# 4. a small CNN trained here, on Fashion-MNIST, in a few minutes on a CPU: the model the
#    later lessons explain for real.
#
# **You need:** notebook 00 passed.

# %%
# On Google Colab, install the course's package first; anywhere else this does nothing.
import sys

if "google.colab" in sys.modules:  # pragma: no cover - only on Colab
    import subprocess

    REPO = "https://github.com/what-cnns-see/what-cnns-see"  # [project.urls] in pyproject.toml
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"git+{REPO}"], check=True)

# %% tags=["parameters"]
# Parameters (CI runs set COURSE_QUICK=1: same code path, less work)
from course_utils import config

QUICK = config.quick()

# %%
import keras
import matplotlib.pyplot as plt
import numpy as np

from course_utils import data, models

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. An image is a tensor
#
# A colour photo is an array of shape `(height, width, 3)`: at each pixel, three numbers for
# the red, green and blue intensities, here in `[0, 255]`. A batch of images adds a leading
# axis: `(N, H, W, 3)`.

# %%
cat = data.sample_image("chelsea")  # Chelsea the cat, shipped with scikit-image
print("shape:", cat.shape, " dtype:", cat.dtype, " range:", cat.min(), "-", cat.max())
print("the pixel at row 100, column 200 is (R, G, B) =", cat[100, 200])

fig, axes = plt.subplots(1, 4, figsize=(12, 3))
axes[0].imshow(cat.astype("uint8"))
axes[0].set_title("RGB")
for ax, channel, cmap in zip(axes[1:], range(3), ["Reds", "Greens", "Blues"]):
    ax.imshow(cat[..., channel], cmap=cmap)
    ax.set_title(["red", "green", "blue"][channel] + " channel")
for ax in axes:
    ax.axis("off")
plt.show()

# %% [markdown]
# **What to notice.** Each channel alone is a grey-level picture; the cat's orange fur is
# bright in red and dark in blue. "Colour" is just the relation between three numbers.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. A convolutional layer is a set of kernels
#
# PyTorch writes `Conv2d(3, 64, kernel_size=3)`, Keras writes `Conv2D(64, 3)` on a 3-channel
# input: 3 input channels, 64 output channels = **64 kernels**, each `3 × 3 × 3`. Output
# channel $k$ at pixel $(i, j)$ is
#
# $$ y_{i,j,k} = b_k + \sum_{u=0}^{2}\sum_{v=0}^{2}\sum_{c=0}^{2} w_{u,v,c,k}\; x_{i+u,\,j+v,\,c}.
# $$
#
# The weights $w$ are learned by backpropagation: the kernels are the essence of a trained CNN.

# %%
keras.utils.set_random_seed(0)
conv = keras.layers.Conv2D(64, 3, padding="valid")
x = (cat[None, :120, :160] / 255.0).astype("float32")  # a crop, scaled to [0, 1]
y_keras = conv(x).numpy()
kernels, bias = conv.get_weights()
print("kernel tensor:", kernels.shape, "= (height, width, input channels, output channels)")
print("output:", y_keras.shape)

# %% [markdown]
# The same computation by hand: cut every 3 × 3 × 3 patch out of the image, then multiply
# each patch with each kernel and add the bias. `einsum` says exactly the formula above.

# %%
def conv2d_by_hand(image: np.ndarray, kernels: np.ndarray, bias: np.ndarray) -> np.ndarray:
    kh, kw = kernels.shape[:2]
    h, w = image.shape[0] - kh + 1, image.shape[1] - kw + 1
    patches = np.stack(
        [image[u : u + h, v : v + w] for u in range(kh) for v in range(kw)], axis=2
    ).reshape(h, w, kh, kw, -1)  # (H', W', kh, kw, C)
    return np.einsum("ijuvc,uvck->ijk", patches, kernels) + bias


y_hand = conv2d_by_hand(x[0], kernels, bias)
err = np.abs(y_hand - y_keras[0]).max()
print(f"largest difference between numpy and Keras: {err:.2e}")
assert err < 1e-4

# %%
fig, axes = plt.subplots(2, 8, figsize=(14, 3.6))
for k, ax in enumerate(axes.flat):
    ax.imshow(y_keras[0, ..., k], cmap="gray")
    ax.set_title(f"kernel {k}", fontsize=8)
    ax.axis("off")
fig.suptitle("16 of the 64 output channels of an untrained Conv2D (random kernels)")
plt.show()

# %% [markdown]
# **What to notice.** Even random kernels respond differently: some to edges of a certain
# direction, some to colour. Training turns them into useful detectors; notebook 03 shows
# what trained VGG16 kernels respond to.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. Reading a model summary
#
# The course's Fashion-MNIST CNN: four conv blocks (convolution, batch normalization, ReLU),
# two max-pools, global average pooling and one dense layer that outputs 10 logits, then a
# softmax.

# %%
arch = models.trained.fashion_architecture()
arch.summary()

# %% [markdown]
# Every line is arithmetic you can check:
# - `conv1`: 32 kernels of 3 × 3 × 1 (no bias, batch norm adds its own shift) = 288 weights;
# - `conv1_bn`: 4 numbers per channel (scale, shift, running mean and variance) = 128;
# - `pool1` halves height and width: 28 → 14; `gap` averages each 7 × 7 map to one number;
# - `logits`: 128 inputs × 10 outputs + 10 biases = 1290.

# %%
def conv_params(k, c_in, c_out):
    return k * k * c_in * c_out


expected = (
    conv_params(3, 1, 32) + 4 * 32
    + conv_params(3, 32, 64) + 4 * 64
    + conv_params(3, 64, 64) + 4 * 64
    + conv_params(3, 64, 128) + 4 * 128
    + 128 * 10 + 10
)
print("by hand:", expected, " Keras:", arch.count_params())
assert expected == arch.count_params()
assert arch.get_layer("pool2").output.shape[1:] == (7, 7, 64)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. Training it
#
# `models.fashion_cnn()` trains the network on the 60,000 training images (five epochs, Adam)
# the first time, with a progress bar, and caches it under a key made of its architecture and
# training settings; the next call loads it in seconds.

# %%
(x_train, y_train), (x_test, y_test) = data.fashion_mnist()
print("train:", x_train.shape, x_train.dtype, " test:", x_test.shape)

fig, axes = plt.subplots(1, 10, figsize=(13, 1.8))
for cls, ax in enumerate(axes):
    ax.imshow(x_train[np.argmax(y_train == cls)], cmap="gray_r")
    ax.set_title(data.fashion.CLASS_NAMES[cls], fontsize=8)
    ax.axis("off")
plt.show()

# %%
model = models.fashion_cnn()
record = models.history(model)
hist = record["history"]

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.2))
epochs = np.arange(1, len(hist["loss"]) + 1)
ax1.plot(epochs, hist["accuracy"], "o-", label="train")
ax1.plot(epochs, hist["val_accuracy"], "o-", label="test")
ax1.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
ax2.plot(epochs, hist["loss"], "o-", label="train")
ax2.plot(epochs, hist["val_loss"], "o-", label="test")
ax2.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
ax1.legend()
plt.show()

# %% [markdown]
# Measure the accuracy ourselves on the 10,000 test images (not copied from the record):

# %%
x_test01 = (x_test.astype("float32") / 255.0)[..., None]
n = 2000 if QUICK else len(x_test01)
pred = model.predict(x_test01[:n], batch_size=500, verbose=0).argmax(axis=1)
accuracy = float((pred == y_test[:n]).mean())
print(f"test accuracy on {n} images: {accuracy:.3f}")
assert accuracy >= 0.90

# %% [markdown]
# **What to notice.** Train and test accuracy stay close: the small network does not overfit
# in five epochs. About one test image in eleven is still wrong; the lessons ahead ask *why*
# the network says what it says, right or wrong.
#
# ## Exercises
# 1. How many weights does a `Conv2D(64, 3)` on an RGB image have, with its biases?
# 2. Change `conv2d_by_hand` to use a stride of 2. Which Keras layer gives the same result?
# 3. Which classes does the model confuse most? (Hint: a confusion matrix of `pred` and
#    `y_test[:n]`.)
#
# <details><summary>Solutions</summary>
#
# The hidden code cell below (click it to open) runs each solution and checks its answer.
#
# 1. 3 × 3 × 3 × 64 = 1728 weights plus 64 biases = 1792 (VGG16's `block1_conv1` line).
# 2. Take every second row and column of the output: `y_hand[::2, ::2]` equals the output of
#    a Keras `Conv2D` with `strides=2` and the same weights.
# 3. Count each (true class, predicted class) pair of `y_test[:n]` and `pred` in a 10 × 10
#    confusion matrix: the largest confusions involve shirts, taken for T-shirts, pullovers
#    and coats, the classes that look alike at 28 × 28.
# </details>

# %% jupyter={"source_hidden": true} tags=["solution"]
# 1. The parameters of Conv2D(64, 3) on an RGB image
layer = keras.layers.Conv2D(64, 3)
layer.build((None, 28, 28, 3))
print("Conv2D(64, 3) on RGB:", layer.count_params(), "parameters")
assert layer.count_params() == 3 * 3 * 3 * 64 + 64 == 1792

# 2. Stride 2 keeps every second row and column of the stride-1 output
strided = keras.layers.Conv2D(64, 3, strides=2)
strided.build(x.shape)
strided.set_weights([kernels, bias])
y_strided = strided(x).numpy()[0]
err_strided = np.abs(y_hand[::2, ::2] - y_strided).max()
print(f"y_hand[::2, ::2] vs Conv2D(64, 3, strides=2): largest difference {err_strided:.2e}")
assert y_strided.shape == y_hand[::2, ::2].shape and err_strided < 1e-4

# 3. The confusion matrix: rows are the true classes, columns the predictions
confusion = np.bincount(y_test[:n].astype(int) * 10 + pred, minlength=100).reshape(10, 10)
wrong = confusion - np.diag(np.diag(confusion))
names = data.fashion.CLASS_NAMES
shirt = names.index("Shirt")
for k in np.argsort(wrong, axis=None)[::-1][:5]:
    t, p = np.unravel_index(k, wrong.shape)
    print(f"{names[t]:>12s} taken for {names[p]:<12s} {wrong[t, p]:4d} times")
shirt_top3 = [names[k] for k in np.argsort(wrong[shirt])[::-1][:3]]
print("shirts are taken most often for", shirt_top3)
t, p = np.unravel_index(np.argmax(wrong), wrong.shape)
assert shirt in (t, p)  # the largest confusion involves shirts (measured: T-shirt/top <-> Shirt)
alike = {"T-shirt/top", "Pullover", "Coat"}
assert shirt_top3[0] in alike and len(alike & set(shirt_top3)) >= 2
