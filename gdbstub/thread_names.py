"""What each thread is called for the client: its goroutine in a Go program, else its comm name."""

from __future__ import annotations

from .process import Inferior, procfs


def labels(inferior: Inferior) -> dict:
    """Go thread labels for the current stop ({} for other programs, and while threads run in
    non-stop mode: the goroutines are read from a stopped program only)."""
    go = inferior.go
    if go is None or not inferior.alive or (inferior.non_stop and inferior.is_running()):
        return {}
    return go.thread_labels()


def thread_name(inferior: Inferior, tid: int, go_labels: dict | None = None) -> str:
    go_labels = labels(inferior) if go_labels is None else go_labels
    label = go_labels.get(tid)
    if label is not None:
        return label.name
    return procfs.thread_name(inferior.pid, tid) or ""


def thread_text(inferior: Inferior, tid: int, go_labels: dict | None = None) -> str | None:
    """A longer description (the goroutine and where it is), or None."""
    go_labels = labels(inferior) if go_labels is None else go_labels
    label = go_labels.get(tid)
    return label.text if label is not None else None
