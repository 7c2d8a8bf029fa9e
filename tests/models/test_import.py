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


HEAVY = "('pydantic', 'openai', 'anthropic', 'xllamacpp', 'httpx', 'xcs.models')"


def test_importing_xcs_loads_neither_pydantic_nor_the_model_layer() -> None:
    code = (
        f"import sys, xcs, xcs.errors; print([m for m in {HEAVY} if m in sys.modules]); "
        "print(xcs.ValidationError('bad', parameters=('x',)).parameters)"
    )
    assert run(code).splitlines() == ["[]", "('x',)"]


def test_xcs_models_is_the_callable_whichever_import_comes_first() -> None:
    # Lazily loaded (NOTE: [Lazy exports] in xcs/__init__.py): the first use of
    # xcs.models, `import xcs.models`, or `from xcs.models import ...` loads it, and
    # in each case xcs.models is the callable, not the subpackage.
    firsts = [
        "import xcs",
        "import xcs.models",
        "from xcs.models import Response",
        "from xcs import models",
        "import xcs.models._sim",
    ]
    for first in firsts:
        code = (
            f"{first}\nimport sys, pickle, xcs\nfrom xcs.models import Models, Response, models\n"
            "assert isinstance(xcs.models, Models) and xcs.models is models, type(xcs.models)\n"
            "answer = xcs.models('sim:echo', 'hello there', temperature=0)\n"
            "assert isinstance(answer, Response) and xcs.models.Response is Response\n"
            "assert pickle.loads(pickle.dumps(xcs.models)) is models\n"
            "print(answer, xcs.models.bind('sim:echo')('ok'), 'pydantic' in sys.modules)"
        )
        assert run(code) == "hello there ok True", first
