"""The garbage collector's settings while a drain runs."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def settled_heap() -> Iterator[None]:
    """Leave the objects that exist before a drain out of the garbage collector's full
    passes while it runs, and collect the youngest objects less often.

    A drain allocates a few dozen small objects per recipient, which triggers full
    collections that walk every object of the process (SQLAlchemy's, requests', the
    renders...): measured at ~6 us per recipient, a fifth of the pipeline. What existed
    before the drain is frozen (gc.freeze: kept, not collected) and handed back after.
    A batch's objects (tens of thousands, freed together by reference counting when the
    batch is done) also set off a young-generation pass every 700 allocations, ~1 us per
    recipient; a higher first threshold lets a batch come and go between passes. Cycles
    are still collected, only later. Concurrent drains in one process only shorten each
    other's frozen time and raised threshold."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(thresholds[0], YOUNG_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


YOUNG_THRESHOLD = 100_000  # allocations between young-generation passes during a drain
