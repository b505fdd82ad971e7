"""Processes the engine starts end with the process that started them, whatever killed it.

Why: ``egbad detect`` killed with ``kill -9`` (or by the out-of-memory killer, a crash, a
supervisor) left both of its image-decoding DataLoader workers alive, parented to init, for an hour
and more: at exit each worker's ``multiprocessing`` queue finaliser joins its feeder thread, which
blocks writing to a pipe that nobody reads any more. The fix is the kernel's: each worker asks, as it
starts, to be sent SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``, Linux), and exits at
once if the parent is already gone. The signal comes when the *thread* that started the worker ends;
DataLoader workers live only while that thread iterates their loader, so this is never early.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # from linux/prctl.h


def die_with_parent(_worker_id: int = 0) -> bool:
    """In a child process: be killed when the parent dies (a DataLoader ``worker_init_fn``). True
    where the kernel took the request (Linux with glibc or musl); elsewhere nothing is done."""
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        taken = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
    if taken and os.getppid() != parent:  # the parent died before the request: nobody will be told
        os._exit(1)
    return taken
