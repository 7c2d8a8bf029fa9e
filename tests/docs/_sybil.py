"""Executable documentation: every fenced Python block of README.md and docs/*.md runs
as a test (Sybil), and every shown output is compared.

The conventions, documented for writers in docs/README.md:

- A ```python block runs in its page's namespace, in page order, so a later block sees
  an earlier block's names. A block whose first line starts with ``>>>`` is a doctest:
  its shown output is compared, with ``...`` matching anything (ELLIPSIS).
- ``<!-- invisible-code-block: python ... -->`` is setup a fragment needs (stand-ins
  for the reader's own functions); it runs but is not rendered.
- ``<!-- skip: next "reason" -->`` skips the next block, and the reason is required:
  a skip without one fails the run.
- Paid providers cost nothing here: ``openai:`` and ``anthropic:`` ids reach a fake
  server on 127.0.0.1 (tests/models/_fake_openai.py, answering with the last message,
  as events to a streamed request)
  through ``OPENAI_BASE_URL``/``ANTHROPIC_BASE_URL`` and dummy keys; ``local:`` ids are
  answered by the simulator, so no model is loaded.
- Each page runs in a fresh temporary directory (files it writes vanish) on a fresh
  model layer, and what it does to logging is undone after it.
"""

from __future__ import annotations

import doctest
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sybil import Document, Region, Sybil
from sybil.integration.pytest import SybilItem
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser
from tests.models._fake_openai import (
    FakeOpenAIServer,
    Reply,
    anthropic_reply,
    chat_reply,
    stream_events,
)

_ROOT = Path(__file__).resolve().parents[2]


class ReasonedSkipParser(SkipParser):
    """Sybil's ``skip`` directive, refusing a skip that does not say why in the doc."""

    def __call__(self, document: Document) -> Iterable[Region]:
        for region in super().__call__(document):
            action, reason = region.parsed
            if action in ("next", "start") and not (reason or "").strip():
                line = document.text.count("\n", 0, region.start) + 1
                raise ValueError(
                    f"{document.path}, line {line}: 'skip: {action}' needs a reason in the "
                    'doc itself, e.g. <!-- skip: next "needs a Ray cluster" -->'
                )
            yield region


# -- the page's environment ---------------------------------------------------------

_saved: dict[int, dict[str, Any]] = {}
_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")


def _fake_reply(server: FakeOpenAIServer) -> Any:
    def behaviour(body: dict[str, Any], index: int) -> Reply:
        last = body["messages"][-1]["content"]
        text = last if isinstance(last, str) else last[-1]["text"]
        if server.paths[index].endswith("/messages"):
            return Reply(body=anthropic_reply(text))
        if body.get("stream"):  # xcs.models.stream: the same text, as events
            words = text.split(" ")
            return Reply(
                events=stream_events([w if i == 0 else " " + w for i, w in enumerate(words)])
            )
        return Reply(body=chat_reply(text))

    return behaviour


def setup(namespace: dict[str, Any]) -> None:
    from xcs.models import models
    from xcs.models._local import LocalProvider
    from xcs.models._sim import SimProvider

    class LocalStandIn(SimProvider):
        """``local:`` in the docs' run: the simulator, so no model is loaded; with the
        local provider's defaults (one request in flight per server slot)."""

        name = "local"
        defaults = LocalProvider.defaults

    models._reset()
    models.register_provider("local", LocalStandIn)
    server = FakeOpenAIServer()
    server.behaviour = _fake_reply(server)
    server.start()
    tmp = tempfile.TemporaryDirectory(prefix="xcs-docs-")
    saved = {
        "server": server,
        "tmp": tmp,
        "cwd": os.getcwd(),
        "env": {name: os.environ.get(name) for name in _ENV},
        # A page may configure logging as an application would (basicConfig).
        "root_handlers": list(logging.getLogger().handlers),
        "levels": {name: logging.getLogger(name).level for name in ("", "xcs")},
    }
    _saved[id(namespace)] = saved
    os.environ.update(
        OPENAI_API_KEY="sk-docs-example",
        OPENAI_BASE_URL=server.base_url,
        ANTHROPIC_API_KEY="sk-ant-docs-example",
        ANTHROPIC_BASE_URL=server.root_url,
    )
    os.chdir(tmp.name)


def teardown(namespace: dict[str, Any]) -> None:
    from xcs.models import models

    saved = _saved.pop(id(namespace))
    os.chdir(saved["cwd"])
    for name, value in saved["env"].items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    root = logging.getLogger()
    for handler in root.handlers:
        if handler not in saved["root_handlers"]:
            root.removeHandler(handler)
    for name, level in saved["levels"].items():
        logging.getLogger(name).setLevel(level)
    models._reset()
    saved["server"].stop()
    saved["tmp"].cleanup()


sybil = Sybil(
    parsers=[
        PythonCodeBlockParser(doctest_optionflags=doctest.ELLIPSIS),
        ReasonedSkipParser(),
    ],
    path=str(_ROOT),
    patterns=["README.md", "docs/*.md"],
    # docs/README.md explains this markup: its examples are directives, not code.
    excludes=["docs/README.md"],
    setup=setup,
    teardown=teardown,
    name="docs",
)

pytest_collect_file = sybil.pytest()


# Sybil 10's pytest item cuts a failure's traceback at the example's frame, and
# crashes (IndexError, reported as an INTERNALERROR of the whole run) when the failure
# has no such frame: a warning turned error after the example ran, such as the
# ResourceWarning of a file an example left open. Show the whole traceback instead.
_cut_traceback = SybilItem._traceback_filter


def _traceback_filter(self: SybilItem, excinfo: Any) -> Any:
    try:
        return _cut_traceback(self, excinfo)
    except IndexError:
        return excinfo.traceback


SybilItem._traceback_filter = _traceback_filter  # type: ignore[method-assign]
