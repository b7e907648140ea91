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
# # 00 · Setup: is this machine ready for the course?
#
# **Goal.** Check that everything the course needs is here: the Python packages, a GPU or
# not, whether we are offline, and which pretrained weights and datasets are already cached.
#
# **You need:** nothing but this repository (or Colab). Every later notebook starts from the
# same two lines: `import course_utils` and a call to one of its functions.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## 1. On Colab? Install the companion package
#
# On your own machine, `make course` (or `pip install -e .`) already installed `course_utils`.
# On Google Colab the next cell installs it from the course repository; elsewhere it does
# nothing.

# %%
# On Google Colab, install the course's package first; anywhere else this does nothing.
import sys

if "google.colab" in sys.modules:  # pragma: no cover - only on Colab
    import subprocess

    REPO = "https://github.com/what-cnns-see/what-cnns-see"  # [project.urls] in pyproject.toml
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"git+{REPO}"], check=True)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## 2. What this machine has
#
# `course_utils.__main__.check()` collects versions, devices and caches. The same report is
# printed by `python -m course_utils check` in a terminal.

# %%
from course_utils.__main__ import check

report = check()
for key, value in report.items():
    print(f"{key:26s} {value}")

# %% [markdown]
# **What to notice.**
# - `gpus` is empty on a laptop: the course still runs, because every heavy method in
#   `course_utils` is compiled with `tf.function` and batched. With an NVIDIA GPU on Linux,
#   `pip install "tensorflow[and-cuda]"` is all it takes; the same code then uses the GPU.
# - `imagenet_weights_cached` says which pretrained models will load for real, and
#   `imagenet_notop_weights_cached` which have the file without the classifier that transfer
#   learning needs (lesson 10). When a model's weights are missing, each lesson asks for
#   **EfficientNet-Lite0** instead (`fallback="efficientnet_lite0"`: a real pretrained ImageNet
#   network whose weights come with the course) and names it on every figure; a random-weight
#   stand-in appears only where a lesson needs one on purpose, labelled in red.

# %%
import keras
import tensorflow as tf

assert tf.__version__.startswith("2."), tf.__version__
assert keras.__version__.startswith("3."), keras.__version__
assert report["fashion_mnist_folder"] != "None" or not report["COURSE_OFFLINE"], (
    "Fashion-MNIST is needed offline: apt-get install dataset-fashion-mnist"
)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## 3. Getting the real weights and datasets
#
# On a machine with internet, one command downloads everything the course can use
# (ImageNet weights of VGG16, Xception, InceptionV3, MobileNetV2 and ResNet50, Fashion-MNIST,
# the Food-101 archive and the cats-vs-dogs archive), checks the checksums, and extracts them
# into `data/`:
#
# ```bash
# python -m course_utils fetch all          # or: fetch vgg16 xception food101 ...
# ```
#
# A seminar room without internet: run it once on a machine that has it, then copy
# `~/.keras/models/` and `data/` to the other machines.
#
# ## Exercise
# Run `python -m course_utils fetch mobilenet_v2` in a terminal (if you have internet), then
# re-run the check above. Which line changes?
#
# <details><summary>Solution</summary>
#
# `imagenet_weights_cached` now shows `'mobilenet_v2': True`; `models.load` then returns the
# real network for `"mobilenet_v2"`, and its figures carry no stand-in label. The hidden cell
# below checks that line against the cache (and, once the weights are there, that the network
# is not a stand-in).
# </details>

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution: the line that changes is `imagenet_weights_cached`.
from course_utils import models

cached = report["imagenet_weights_cached"]["mobilenet_v2"]
print("imagenet_weights_cached['mobilenet_v2'] =", cached)
assert cached == models.weights_cached("mobilenet_v2")
if cached:  # after the fetch: the real network, no stand-in label on its figures
    assert not models.info(models.load("mobilenet_v2")).standin
