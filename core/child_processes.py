"""Child processes that die with the process that started them, even when it is killed with SIGKILL.

A campaign starts a Tiled server, a Channel Access repeater and an IOC per station. Killed with
`kill -9`, it has no chance to stop them: left alone they would run on for ever, holding ports and
the catalog. On Linux the kernel can send a child a signal when its parent dies
(`prctl(PR_SET_PDEATHSIG)`); elsewhere `popen_dying_with_parent` is a plain `Popen`.

The kernel's parent-death signal follows the *thread* that forked, not the process: a child
started from a short-lived thread (a writer, a guard restarting a server) would be killed when
that thread ends. So every such child is forked by one thread that lives as long as the process.
"""

from __future__ import annotations

import functools
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def popen_dying_with_parent(args: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
    """`subprocess.Popen(args, **popen_kwargs)`, and the child gets SIGTERM when this process dies."""
    hook = _parent_death_signal()
    if hook is None:
        return subprocess.Popen(args, **popen_kwargs)

    def spawn() -> subprocess.Popen[Any]:
        # the hook only makes one system call between fork and exec (see _parent_death_signal)
        return subprocess.Popen(args, preexec_fn=hook, **popen_kwargs)  # noqa: PLW1509

    return _spawner().submit(spawn).result()


@functools.cache
def _spawner() -> ThreadPoolExecutor:
    """The one thread that forks children which die with their parent: it lives as long as the process."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="child-spawner")


def _parent_death_signal() -> Callable[[], None] | None:
    """A pre-exec hook that makes the kernel SIGTERM the child when its parent dies (Linux only).

    libc is loaded here, in the parent, so the hook does nothing between fork and exec but one
    system call.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1

    def hook() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)

    return hook
