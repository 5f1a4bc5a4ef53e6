"""The process pool: run one function over many tasks on ``workers`` processes, results in
task order, progress reported as tasks finish. The pool is opened once per run (both passes
share it) and is always shut down and joined."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager

Progress = Callable[[str, int, int], None]


def _call(fn, args):
    return fn(*args)


def parallel_map(
    fn, tasks: list[tuple], workers: int, progress: Progress | None, phase: str, pool=None
):
    """Run ``fn(*task)`` for every task, in a process pool when workers > 1; results in order.
    ``pool``: an open executor to reuse (its owner shuts it down); else one is made here."""
    results: list = [None] * len(tasks)
    if progress:
        progress(phase, 0, len(tasks))
    if workers <= 1 or len(tasks) <= 1:
        for i, t in enumerate(tasks):
            results[i] = fn(*t)
            if progress:
                progress(phase, i + 1, len(tasks))
        return results
    if pool is None:
        with worker_pool(workers) as own:
            return parallel_map(fn, tasks, workers, progress, phase, own)
    futures = {pool.submit(_call, fn, t): i for i, t in enumerate(tasks)}
    try:
        for done, fut in enumerate(as_completed(futures), start=1):
            results[futures[fut]] = fut.result()
            if progress:
                progress(phase, done, len(tasks))
    except BaseException:
        for fut in futures:
            fut.cancel()
        raise
    return results


@contextmanager
def worker_pool(workers: int):
    """A process pool that is always shut down and joined (queued work cancelled on error),
    so no worker or feeder thread outlives the run (no 'Bad file descriptor' at exit)."""
    if workers <= 1:
        yield None
        return
    pool = ProcessPoolExecutor(max_workers=workers)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    else:
        pool.shutdown(wait=True)
