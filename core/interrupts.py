"""Ctrl-C stops a long DuckDB statement within a moment, not when the statement ends.

DuckDB's Python client notices a pending SIGINT only between the pieces of work the calling
thread runs; one long piece (a sort, a wide scan of a large file) holds it for seconds or
minutes, so a Ctrl-C during a load could seem ignored until the statement finished (measured:
a SIGINT during a long ORDER BY stopped it at once in some runs and not within 10 s in others).

``forward_sigint()`` (the CLI runs every command inside it) has Python's C-level signal handler
also write to a wake-up socket (``signal.set_wakeup_fd``); a watcher thread reading it calls
``interrupt()`` on every DuckDB connection registered with ``track()``: the running statement
stops with DuckDB's interrupt error, which the CLI reports as exit 130 (``tokenbook.errors.
is_interrupt``), and an open load transaction is rolled back as for any failure. Python's own
handler is untouched: KeyboardInterrupt is still raised when the main thread next runs Python
code. Interrupting a connection that runs nothing has no effect on its next statement.

Only the main thread can install a wake-up fd: elsewhere (a thread, an Airflow worker, which
handles its own signals) ``forward_sigint()`` does nothing.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import weakref
from collections.abc import Iterator

_tracked: weakref.WeakSet = weakref.WeakSet()
_lock = threading.Lock()


def track(con):
    """Register a DuckDB connection to be interrupted on Ctrl-C; returns it. Held weakly: a
    closed or dropped connection needs no unregistering."""
    with _lock:
        _tracked.add(con)
    return con


def interrupt_all() -> int:
    """``interrupt()`` every registered connection; returns how many were asked."""
    with _lock:
        cons = list(_tracked)
    for con in cons:
        with contextlib.suppress(Exception):  # closed already: nothing runs on it
            con.interrupt()
    return len(cons)


@contextlib.contextmanager
def forward_sigint() -> Iterator[None]:
    """While the block runs, a SIGINT also interrupts the registered DuckDB connections."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    try:
        previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    except (ValueError, OSError):  # not the main interpreter's main thread
        reader.close()
        writer.close()
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while True:
            try:
                data = reader.recv(64)
            except OSError:
                return
            if not data or done.is_set():
                return
            if signal.SIGINT in data:
                interrupt_all()

    watcher = threading.Thread(target=watch, name="tokenbook-sigint", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        signal.set_wakeup_fd(previous)
        with contextlib.suppress(OSError):
            writer.send(b"\0")  # wake the watcher so it sees ``done``
        watcher.join(timeout=1)
        reader.close()
        writer.close()
