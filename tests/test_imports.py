import subprocess
import sys


def test_the_package_and_its_plain_modules_do_not_import_torch():
    """The window imports these at start-up; torch must wait for the worker thread."""
    code = ("import sys, squeeze_studio, squeeze_studio.request, squeeze_studio.recipe, squeeze_studio.events, "
            "squeeze_studio.models, squeeze_studio.references, squeeze_studio.cli, squeeze_studio.batch, "
            "squeeze_studio.hub.source, "
            "squeeze_studio.hub.addon, squeeze_studio.hub.defaults, squeeze_studio.hub.resolve, "
            "squeeze_studio.hub.manager, squeeze_studio.hub.registry, squeeze_studio.hub.verify, "
            "squeeze_studio.hub.cli; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"
