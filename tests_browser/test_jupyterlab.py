"""A real client: JupyterLab on a loopback port, notebook 00 opened and run in headless Chromium (Playwright).

Run with `make browser-test` (it installs Debian's chromium first). The screenshot is kept in build/browser/.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update"]
NOTEBOOK = "00_start_here.ipynb"
DONE_TEXT = "figures recorded for 00_start_here"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def lab(tmp_path):
    """A JupyterLab server on 127.0.0.1 serving a copy of the notebooks; yields (url, token)."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make browser-test` (it installs Debian's chromium)")
    notebooks = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", notebooks)
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "HUBHELPERS_BUILD_DIR": str(tmp_path / "build"), "MPLBACKEND": "Agg",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter")}
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--notebook-dir={notebooks}", "--ServerApp.port_retries=0"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
        cmd.append("--allow-root")
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited: {(tmp_path / 'lab.log').read_text()[-2000:]}")
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("JupyterLab did not answer within 90 s")
    yield url, token
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


def _accept_kernel_dialog(page) -> None:
    """JupyterLab may ask which kernel to start (python3 and the course's llm-hub kernel are both the venv's)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.locator(".jp-Dialog").get_by_role("button", name="Select", exact=True).click(timeout=10_000)
    except PlaywrightTimeout:
        return  # no dialog: the notebook's own kernelspec was started


def test_notebook_00_runs_in_jupyterlab_in_chromium(lab):
    from playwright.sync_api import sync_playwright

    url, token = lab
    shots = ROOT / "build" / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/lab/tree/{NOTEBOOK}?token={token}", timeout=90_000)
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=90_000)
        _accept_kernel_dialog(page)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_text("Run All Cells", exact=True).click()
        try:
            done = page.get_by_text(DONE_TEXT).first
            done.wait_for(state="attached", timeout=240_000)  # JupyterLab may window cells out of view
            done.scroll_into_view_if_needed()
        finally:  # the screenshot is kept either way: it shows what the learner would have seen
            page.screenshot(path=str(shots / "00_start_here.png"), full_page=False)
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']")
        assert errors.count() == 0, errors.first.inner_text()
        shown = "\n".join(page.locator(".jp-OutputArea-output").all_inner_texts())  # the cells in view
        assert "'seed_reproducible': True" in shown and "'n_libraries_imported': 12" in shown, shown[-1000:]
        browser.close()
