"""Pages that only a browser can judge: Swagger UI must render the API offline (its JavaScript comes
from the sidecar package, not a CDN), and the admin login must load its stylesheet. Debian's
headless Chromium loads them from a live server; the check is skipped with a reason when it is
absent."""

import shutil
import subprocess
import tempfile

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(not CHROMIUM,
                                reason="Debian's chromium is not installed (.ci/run installs it)")


def rendered_dom(url: str) -> str:
    assert CHROMIUM is not None  # the module is skipped without it
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom", url],
            capture_output=True, text=True, timeout=120,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.django_db(transaction=True)
def test_swagger_ui_renders_every_tag_offline(live_server, settings):
    settings.WHITENOISE_USE_FINDERS = True
    dom = rendered_dom(f"{live_server.url}/api/docs/")
    # Operations exist only after swagger-ui-bundle.js ran and fetched /api/schema/.
    assert 'class="opblock-tag' in dom
    for tag in ("orders", "products", "inventory", "customers"):
        assert f'data-tag="{tag}"' in dom, tag


@pytest.mark.django_db(transaction=True)
def test_admin_login_page_renders_and_its_stylesheets_are_served(live_server, settings):
    import re
    import urllib.request

    settings.WHITENOISE_USE_FINDERS = True
    dom = rendered_dom(f"{live_server.url}/admin/login/")
    assert "StateSet back office" in dom and 'name="username"' in dom
    sheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', dom)
    assert sheets
    for href in sheets:
        with urllib.request.urlopen(f"{live_server.url}{href}") as answer:
            assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/css")
