"""A lesson's first output is the lesson's, not TensorFlow's C++ start-up lines."""

from __future__ import annotations

import os
import subprocess
import sys

import nbformat
from nbclient import NotebookClient

NOISE = ("absl::InitializeLog", "oneDNN custom operations", "cuda", "cuInit")


def _first_cells_of_a_lesson() -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from course_utils import config\nQUICK = config.quick()"),
        nbformat.v4.new_code_cell("import keras\nimport tensorflow as tf\n"
                                  "print(float(tf.reduce_sum(tf.ones(3))))"),
    ])


def test_an_executed_lesson_shows_no_tensorflow_start_up_lines():
    nb = _first_cells_of_a_lesson()
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": "."}}).execute(env=env)
    outputs = [o for c in nb.cells for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs)
    assert "3.0" in text  # the lesson's own output is there
    stderr = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
    assert not any(n in stderr for n in NOISE), stderr


def test_without_course_utils_the_lines_are_there_and_with_log_level_0_they_stay():
    # the control: the same import without course_utils prints them on this machine (if it
    # does not, TensorFlow stopped printing them and the quiet start-up is no longer needed)
    code = "import tensorflow as tf; tf.config.list_physical_devices()"
    bare = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items()
                               if k != "TF_CPP_MIN_LOG_LEVEL"}, check=True)
    assert any(n in bare.stderr for n in NOISE), bare.stderr
    loud = subprocess.run([sys.executable, "-c", "import course_utils; " + code],
                          capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"}, check=True)
    assert any(n in loud.stderr for n in NOISE), loud.stderr
    quiet = subprocess.run([sys.executable, "-c", "import course_utils; " + code],
                           capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items()
                                if k != "TF_CPP_MIN_LOG_LEVEL"}, check=True)
    assert not any(n in quiet.stderr for n in NOISE), quiet.stderr
