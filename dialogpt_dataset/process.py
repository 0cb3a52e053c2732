"""How our commands set up a process they own, and how a task treats the garbage collector.

A command that owns its process (``dialogpt-build-dataset``; the benchmark's worker, which stands
for the CLI's pipeline part) makes two process-wide choices, never made for a library caller:

* :func:`limit_blas_threads`, before numpy is imported: the extraction never calls BLAS, yet
  importing numpy (datasets and pyarrow do) starts OpenBLAS's worker threads, which spin for
  0.1-0.2 CPU s of a build on a 2-core machine; one thread unless the user set one;
* :func:`freeze_owned_process`, once its imports are done.

Every datatrove task runs in :func:`frozen_heap`, whatever process it is in.
"""

from __future__ import annotations

import contextlib
import gc
import os


def limit_blas_threads() -> None:
    """One OpenBLAS thread for the rest of this process (``OPENBLAS_NUM_THREADS``, unless set): only
    in effect when called before numpy is imported, and only for a command that owns its process."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


#: set by :func:`freeze_owned_process`: this process's owner keeps its objects frozen
_owner_froze = False


def freeze_owned_process() -> None:
    """For a command that owns its process (the CLI; the benchmark's worker, which stands for it): the
    objects alive now (its imports) stay frozen out of every later garbage collection, and so do those
    alive when each local task starts (:func:`frozen_heap` then keeps its freeze and runs the task
    without the cyclic collector). They live as long as the process, yet each full collection
    traversed them again, and the interpreter's exit runs several (0.1-0.2 CPU s of a 200K-comment
    build). Never for a library caller: its objects are not ours to freeze."""
    global _owner_froze
    _owner_froze = True
    gc.freeze()


@contextlib.contextmanager
def frozen_heap():
    """Keep what is alive when a task starts (the interpreter's modules, datatrove's, pyarrow's, the
    caller's objects: ~70K containers) out of the garbage collector's passes while the task runs: it
    all outlives the task, yet every full collection of the task traversed it again (0.04 CPU s each
    on the bench month). The task's own objects are collected as before.

    The process is left as found: unfrozen again at the end, unless objects were already frozen when
    the task started (its owner freezes, as our CLI does: one unfreeze would undo that too). (The
    flag first: ``gc.get_freeze_count`` walks every frozen object, 7 ms in the CLI's process.)

    In a process its owner gave us (:func:`freeze_owned_process`) the task also runs without the
    cyclic collector: a task makes no reference cycles (a ``gc.collect()`` after each task of the
    bench month, and of a month of malformed and too-deep lines, finds at most 8 objects), so its
    ~300 young-generation passes were pure cost (0.05 CPU s of the bench month); memory stays flat
    (bench/extract.py's curve up to 1M comments)."""
    owner_froze = _owner_froze or gc.get_freeze_count() > 0
    was_enabled = gc.isenabled()
    gc.freeze()
    if _owner_froze:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        if not owner_froze:
            gc.unfreeze()
