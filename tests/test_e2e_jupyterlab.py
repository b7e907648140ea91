"""End to end, in a real browser: JupyterLab on localhost, Debian's Chromium driven by Playwright,
a notebook with one of the course's explorers run, its slider moved, the picture seen to change.

The explorer is ``course_utils.widgets.smoothgrad_explorer`` on a tiny Keras model: three panels
(image, saliency, SmoothGrad), an ``IntSlider`` for the number of noisy samples wired with
``interactive_output``. Moving it redraws the SmoothGrad panel only (the running mean of the
cached per-sample maps), so the right third of the picture must change and the rest must not.
Network requests leaving this machine are aborted.
"""

from __future__ import annotations

import base64
import io
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request

import nbformat
import numpy as np
import pytest
from _browser import offline_page
from PIL import Image

EXPLORER = """\
import keras
import numpy as np

from course_utils import widgets

keras.utils.set_random_seed(0)
inputs = keras.Input((16, 16, 3))
x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
x = keras.layers.GlobalAveragePooling2D()(x)
model = keras.Model(inputs, keras.layers.Dense(3)(x))
image = np.random.default_rng(0).uniform(0, 1, (16, 16, 3)).astype("float32")
explorer = widgets.smoothgrad_explorer(model, image, target=0, max_samples=8)
explorer
"""
SAMPLES = ".widget-slider:has(.widget-label:text-is('samples'))"  # a Playwright selector
READOUT = """() => { const s = [...document.querySelectorAll('.widget-slider')].find(
    e => e.querySelector('.widget-label').textContent.trim() === 'samples');
    return s && s.querySelector('.widget-readout').textContent.trim(); }"""

# Bounded: the server gets 40 s to answer, the browser part 100 s in all (45-65 s here
# under a load of 10-15 on 2 cores: the kernel imports TensorFlow and traces the model).
SERVER_BUDGET, BROWSER_BUDGET = 40, 100


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab from this venv on 127.0.0.1:<free port> with a token, an isolated config,
    and a root folder holding ``explorer.ipynb``; terminated when the tests are done."""
    root = tmp_path_factory.mktemp("lab")
    home = tmp_path_factory.mktemp("jupyter-home")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(EXPLORER)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, root / "explorer.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ,
           "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "rt"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           "IPYTHONDIR": str(home / "ipython"), "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
           f"--port={port}", "--port-retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
           "--LabApp.news_url=None", "--allow-root", "--LabApp.extension_manager=readonly",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = open(home / "server.log", "wb")  # noqa: SIM115 (closed in the finalizer)
    server = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_BUDGET
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited: {(home / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer in {SERVER_BUDGET} s: "
                            f"{(home / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield {"base": base, "token": token, "root": root, "log": home / "server.log"}
    finally:
        # shut the kernels down with the server, then make sure the process is gone
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()


def _grey(src: str) -> np.ndarray:
    """A PNG given as a data URL, as a grey-level array in [0, 1]."""
    assert src.startswith("data:image/png;base64,"), src[:40]
    data = base64.b64decode(src.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=float) / 255


IMG = ".jp-OutputArea-output .widget-output img"


def test_moving_the_slider_changes_the_picture(lab):
    end = time.monotonic() + BROWSER_BUDGET

    def left() -> float:
        """Milliseconds left of the browser budget (every wait shares it)."""
        return max(1.0, end - time.monotonic()) * 1000

    with offline_page(viewport=(1280, 900)) as (page, log):
        page.goto(f"{lab['base']}/lab/tree/explorer.ipynb?token={lab['token']}", timeout=left())
        page.wait_for_function("window.jupyterapp && window.jupyterapp.shell", timeout=left())
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=left())
        # run every cell once the notebook has a kernel
        page.wait_for_function(
            """() => { const w = window.jupyterapp.shell.currentWidget;
                return w && w.sessionContext && w.sessionContext.session
                       && w.sessionContext.session.kernel; }""", timeout=left())
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        slider = page.locator(SAMPLES)
        slider.locator(".noUi-handle").wait_for(timeout=left())
        page.wait_for_selector(IMG, timeout=left())
        assert slider.locator(".widget-readout").inner_text(timeout=left()).strip() == "8"
        before = page.get_attribute(IMG, "src", timeout=left())
        # move the slider with the keyboard, as a user would: Home jumps to 1 sample
        slider.locator(".noUi-handle").focus(timeout=left())
        page.keyboard.press("Home")
        page.wait_for_function(f"({READOUT})() === '1'", timeout=left())
        page.wait_for_function(
            "([sel, old]) => { const i = document.querySelector(sel); return i && i.src !== old; }",
            arg=[IMG, before], timeout=left())
        after = page.get_attribute(IMG, "src", timeout=left())
    a, b = _grey(before), _grey(after)
    assert a.shape == b.shape, "the explorer's figure changed size"
    third = a.shape[1] // 3
    change = np.abs(a - b)
    # image and saliency panels stay, the SmoothGrad panel (right third) is redrawn
    assert change[:, :2 * third - 2].max() < 0.02, change[:, :2 * third - 2].max()
    assert change[:, 2 * third + 2:].mean() > 0.002, change[:, 2 * third + 2:].mean()
    assert log.blocked == [], f"JupyterLab tried the network: {log.blocked}"
    assert log.errors == [], f"JavaScript errors: {log.errors}"
