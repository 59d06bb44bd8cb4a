"""A real browser: JupyterLab served on 127.0.0.1, headless Chromium (Debian's ``chromium``,
driven by playwright), runs auto-vs-static.ipynb in SMOKE mode as a user would (Run All), and
the figures must be on the page. The screenshot is kept in results/test-artifacts/.

Chromium is installed with apt-get when missing (root, or password-less sudo); the test is
skipped, saying why, only if that is impossible.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "auto-vs-static.ipynb"
ARTIFACTS = ROOT / "results" / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FIGURES = 3 * 4             # three figures for each of the notebook's four scenarios
TIMEOUT_MS = 150_000


def _install_chromium() -> str | None:
    """Install Debian's chromium; None if done, else why it could not be."""
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if sudo and not shutil.which("sudo"):
        return "chromium is missing and this user can neither apt-get nor sudo"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "install", "-y", "-q", "chromium"],
                ["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        r = subprocess.run(sudo + cmd, env=env, capture_output=True, text=True)
        if cmd[1] == "install" and r.returncode == 0 and Path(CHROMIUM).exists():
            return None
    return f"chromium is missing and 'apt-get install chromium' failed: {r.stderr.strip()[-300:]}"


@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).exists():
        why = _install_chromium()
        if why:
            pytest.skip(why)
    pytest.importorskip("playwright.sync_api",
                        reason="the 'playwright' package is missing (pip install -e '.[test]')")
    return CHROMIUM


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a copy of the notebook (the run must not rewrite the repository's file)."""
    home = tmp_path_factory.mktemp("lab")
    shutil.copy(NOTEBOOK, home / NOTEBOOK.name)
    # all cells in the page (no windowing), so that every figure is in the DOM
    settings = home / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port, token = _free_port(), "autoballoon-test"
    env = {**os.environ, "AUTOBALLOON_SMOKE": "1", "JUPYTER_RUNTIME_DIR": str(home / "rt")}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
           f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={home}",
           "--allow-root", "--LabApp.expose_app_in_browser=True",
           f"--LabApp.user_settings_dir={home / 'settings'}",
           f"--LabApp.workspaces_dir={home / 'workspaces'}",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = open(home / "lab.log", "w")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                assert server.poll() is None, (home / "lab.log").read_text()[-2000:]
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer in 120 s: "
                        + (home / "lab.log").read_text()[-2000:])
        yield f"{url}/lab/tree/{NOTEBOOK.name}?token={token}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)     # the server and its kernel: our session only
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def test_jupyterlab_runs_the_notebook_and_shows_its_figures(chromium, lab):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    args = FLAGS + (["--no-sandbox"] if os.geteuid() == 0 else [])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=args)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(lab, timeout=TIMEOUT_MS)
            # the notebook is open and its kernel is ready: then Run All, as from the menu
            page.wait_for_function(
                "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                " return w && w.sessionContext && w.sessionContext.session &&"
                " w.sessionContext.session.kernel &&"
                " w.sessionContext.session.kernel.connectionStatus === 'connected'; }",
                timeout=TIMEOUT_MS)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_function(
                f"() => [...document.querySelectorAll('.jp-RenderedImage img')]"
                f".filter(i => i.complete && i.naturalWidth > 0).length >= {FIGURES}"
                " || document.querySelector('[data-mime-type=\"application/vnd.jupyter.error\"]')"
                " || document.querySelector('.jp-OutputArea-output.jp-mod-error')",
                timeout=TIMEOUT_MS)
            images = page.locator(".jp-RenderedImage img")
            images.first.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-auto-vs-static.png"))
            errors = page.locator('[data-mime-type="application/vnd.jupyter.error"]')
            assert errors.count() == 0, errors.first.inner_text()[:2000]
            assert images.count() == FIGURES
            sizes = images.evaluate_all("imgs => imgs.map(i => [i.naturalWidth, i.width])")
            assert all(natural > 600 and shown > 300 for natural, shown in sizes), sizes
            # no figure reached the page as text only
            assert "<Figure size" not in page.locator(".jp-Notebook").inner_text()
        finally:
            browser.close()
