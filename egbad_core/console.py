"""What every ``egbad`` command shares: a plain line on stderr, the progress bar, Ctrl-C and
SIGTERM as a stop, and the threshold options."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from typing import Iterator

from .config import AUTO_THRESHOLDS


@contextlib.contextmanager
def signals_stop(stop: threading.Event, announce) -> Iterator[None]:
    """While training or scoring, the first Ctrl-C or SIGTERM (what systemd, Docker and a logout
    send) asks the run to stop after its current iteration or batch: training then writes its
    stopped checkpoint and the JSON line, scoring keeps the rows it wrote, and the exit code is 1,
    as for any run that did not complete (the JSON line says why; not 143, so that a service
    manager's stop reads the same as Ctrl-C's). A second signal interrupts at once (exit 130)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    asked: list[bool] = []

    def interrupted(_signal: int, _frame: object) -> None:
        if asked:
            raise KeyboardInterrupt
        asked.append(True)
        # From another thread: the signal may come while this one holds the stop's own lock (in
        # its wait, between polls) or writes to stderr, and setting it or writing from here would
        # wait on itself for ever (`egbad watch` hung so once in the test suite).
        threading.Thread(target=lambda: (stop.set(), announce()), daemon=True).start()

    previous = {number: signal.signal(number, interrupted) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def info(text: str) -> None:
    """One plain line for the person at the terminal (stderr: stdout holds the JSON line)."""
    print(text, file=sys.stderr)


def progress_bar(quiet: bool, total: int, what: str):
    """tqdm on stderr, off with ``quiet``."""
    from tqdm import tqdm

    return tqdm(total=total, desc=what, unit="it", disable=quiet, file=sys.stderr, dynamic_ncols=True, mininterval=0.5)


def threshold_arguments(parser: argparse.ArgumentParser, labelled: bool = True) -> None:
    """--threshold, --auto-threshold (best F1 only where labels come with the data) and --false-alarm-rate."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--threshold", type=float, help="flag images whose score is at least this")
    group.add_argument(
        "--auto-threshold", choices=AUTO_THRESHOLDS if labelled else [m for m in AUTO_THRESHOLDS if m != "f1"],
        help=("best F1 (needs labels), or " if labelled else "") + "the training images' 99th percentile or mean + 3σ",
    )
    group.add_argument("--false-alarm-rate", metavar="RATE",
                       help="the threshold that flags about this share of good parts: 1/400, 0.25%% or 0.0025")


def threshold_of(args: argparse.Namespace):
    """The threshold the command line asks for: a number, an automatic method, a rate, or None."""
    from . import session

    if args.false_alarm_rate is not None:
        return session.parse_rate(args.false_alarm_rate)
    return args.threshold if args.threshold is not None else args.auto_threshold
