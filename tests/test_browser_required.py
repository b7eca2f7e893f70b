"""A missing browser fails the browser tests (CI must not pass without them), unless the user
says ``LUMOSX_NO_BROWSER=1``: tests/test_browser.py run in a subprocess with the Chromium
lookup pointed at a path that does not exist. Every browser test module is checked
(``BROWSER_MODULES``); a new one must be marked ``browser`` and be listed here."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BROWSER_MODULES = ["tests/test_browser.py", "tests/test_browser_help.py",
                   "tests/test_browser_workflows.py"]


def _run_browser_test(tmp_path, **env):
    e = {k: v for k, v in os.environ.items() if k != "LUMOSX_NO_BROWSER"}
    e.update(LUMOSX_CHROMIUM=str(tmp_path / "no-chromium"), **env)
    r = subprocess.run([sys.executable, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider"]
                       + BROWSER_MODULES,
                       cwd=ROOT, env=e, capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout + r.stderr


def test_missing_browser_fails_the_browser_tests(tmp_path):
    rc, out = _run_browser_test(tmp_path)
    assert rc == 1, out                       # tests failed (errors), not skipped, not passed
    assert "no-chromium is not installed" in out and "LUMOSX_NO_BROWSER=1" in out, out
    assert " error" in out and "skipped" not in out and "passed" not in out, out
    # the browser is checked before any ComfyUI server is started
    assert "ComfyUI exited" not in out


def test_missing_browser_skips_when_the_user_opts_out(tmp_path):
    rc, out = _run_browser_test(tmp_path, LUMOSX_NO_BROWSER="1")
    assert rc == 0, out
    assert "skipped" in out and "error" not in out and "failed" not in out, out


def test_every_browser_module_is_checked():
    """Each test module that opens the app (imports the Playwright helpers) is in
    BROWSER_MODULES and takes the browser marks."""
    tests = os.path.join(ROOT, "tests")
    found = []
    for name in sorted(os.listdir(tests)):
        if (name.startswith("test_") and name.endswith(".py")
                and name != os.path.basename(__file__)):
            with open(os.path.join(tests, name), encoding="utf-8") as f:
                text = f.read()
            if "frontend.open_app(" in text or "frontend.another_page(" in text:
                found.append("tests/" + name)
                assert "pytest.mark.browser" in text, name
    assert found == sorted(BROWSER_MODULES), found
