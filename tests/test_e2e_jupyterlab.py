"""End to end, in a real browser: JupyterLab on localhost, Debian's Chromium driven by Playwright,
a notebook with an ipywidgets explorer run, its slider moved, the picture seen to change.

The explorer is built the way the course builds them: an ``IntSlider`` wired to a matplotlib
drawing with ``interactive_output``. Network requests leaving this machine are aborted.
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

EXPLORER = '''\
import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

slider = widgets.IntSlider(value=2, min=1, max=8, description="bars")


def draw(bars):
    """A picture that depends on the slider: `bars` black columns out of 8 on white."""
    fig, ax = plt.subplots(figsize=(2, 2), dpi=40)
    picture = np.ones((8, 8))
    picture[:, :bars] = 0
    ax.imshow(picture, cmap="gray", vmin=0, vmax=1)
    ax.axis("off")
    plt.show()


out = widgets.interactive_output(draw, {"bars": slider})
out.layout.height = "100px"
display(widgets.VBox([slider, out]))
'''


# Bounded: the server gets 45 s to answer, the browser part 75 s in all (about 30 s here,
# under a load of 10 on 2 cores).
SERVER_BUDGET, BROWSER_BUDGET = 45, 75


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


def _dark(src: str) -> float:
    """The fraction of dark pixels of a PNG given as a data URL."""
    assert src.startswith("data:image/png;base64,"), src[:40]
    data = base64.b64decode(src.split(",", 1)[1])
    grey = np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=float) / 255
    return float(np.mean(grey < 0.5))


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
        handle = page.wait_for_selector(".widget-slider .noUi-handle", timeout=left())
        page.wait_for_selector(IMG, timeout=left())
        assert page.inner_text(".widget-readout", timeout=left()).strip() == "2"
        before = page.get_attribute(IMG, "src", timeout=left())
        # move the slider with the keyboard, as a user would: three steps to the right
        handle.focus()
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        page.wait_for_function("() => document.querySelector('.widget-readout')"
                               ".textContent.trim() === '5'", timeout=left())
        # the kernel redraws for each step (3, 4, 5): wait for the picture of 5
        dark_before, after = _dark(before), before
        while time.monotonic() < end:
            src = page.get_attribute(IMG, "src", timeout=left())
            if src and src != before:
                after = src
                if abs(_dark(after) / dark_before - 5 / 2) < 0.3:
                    break
            time.sleep(0.2)
    # the picture changed the way the drawing says: 2, then 5, of 8 columns are black
    assert after != before, "the picture did not change when the slider moved"
    assert abs(_dark(after) / dark_before - 5 / 2) < 0.3, (dark_before, _dark(after))
    assert log.blocked == [], f"JupyterLab tried the network: {log.blocked}"
    assert log.errors == [], f"JavaScript errors: {log.errors}"
