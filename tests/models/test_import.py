"""Importing the model layer: light (no SDK), and `xcs.models` works as the callable."""

from __future__ import annotations

import subprocess
import sys


def run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_importing_the_model_layer_imports_no_sdk() -> None:
    code = (
        "import sys, xcs, xcs.models; from xcs.models import models; "
        "models('sim:echo', 'hi'); "
        "print([m for m in ('openai', 'anthropic', 'xllamacpp', 'httpx', 'httpx2') "
        "if m in sys.modules])"
    )
    assert run(code) == "[]"


def test_submodules_import_when_xcs_models_is_the_callable() -> None:
    # xcs/__init__.py exports the callable as `xcs.models`, shadowing the package
    # attribute; `import xcs.models.<sub> as m` must still find the submodule.
    code = (
        "import xcs; from xcs.models import models; xcs.models = models; "
        "import xcs.models._sim as sim; import xcs.models; "
        "print(sim.__name__, xcs.models('sim:echo', 'ok'), xcs.models.Response.__name__)"
    )
    assert run(code) == "xcs.models._sim ok Response"
