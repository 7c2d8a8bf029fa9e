"""Process-wide defaults of the runtime, in one place, read once at first use."""

from __future__ import annotations

import os

__all__ = ["DEFAULT_MAX_WORKERS", "THREAD_NAME_PREFIX", "env_int"]


def env_int(name: str, default: int, *, minimum: int = 1) -> int:
    """Read a positive integer setting from the environment.

    A malformed value is an error that names the variable, not a silent default:
    a typo in a deployment should be seen, not absorbed.
    """
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        from xcs.errors import ValidationError

        raise ValidationError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        from xcs.errors import ValidationError

        raise ValidationError(f"{name}={value} must be >= {minimum}")
    return value


# Model calls block on the network for hundreds of milliseconds while using almost no
# CPU, so the shared pool is sized for waiting, not for cores: an ensemble of 64
# samples should run at once on a 2-core machine. Threads start lazily, so a program
# that never overlaps anything never starts one. Override with XCS_MAX_WORKERS.
DEFAULT_MAX_WORKERS = 64

THREAD_NAME_PREFIX = "xcs-worker"
