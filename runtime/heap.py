"""The service's heap, kept out of the garbage collector's way once it is up.

Two costs, both measured in bench/pipeline.py on a 2-core machine, both stalls of the event
loop for every tenant at once:

- **Full passes.** A pass of CPython's cyclic collector over its oldest generation visits every
  tracked object, and a service that is up holds about 160,000: the provider SDKs, phone number
  metadata, pydantic schemas, routes. One pass took about 90 ms, and at 50 messages in flight
  one came every 1,400 messages or so: the pipeline's p99 latency was 114 ms against the bare
  SDK's 16. What exists once the service is up lives as long as the process does; frozen, the
  collector leaves it out, and a full pass costs only what was made since.
- **Young passes.** The youngest generation is collected whenever 700 more container objects
  were made than freed (CPython's default). Deliveries in flight hold more than that between
  them, so under load the count crossed 700 every dozen messages, and every pass found them all
  alive and collected nothing: 34 µs a message at 50 in flight, 98 µs at 200 (with passes over
  the older generations of 1 to 10 ms). With the threshold at :data:`YOUNG_THRESHOLD`, a pass
  comes once the heap really grows, which work in flight alone does not make it do.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "settle"]

YOUNG_THRESHOLD = 10_000
"""Container objects made beyond those freed before the youngest generation is collected.

Above what a few hundred deliveries in flight hold at once; cyclic garbage still goes at the
latest every 10,000 objects (a few MB at most)."""


def settle() -> int:
    """Collect once, freeze every object left, so that later full passes skip them, and raise
    the youngest generation's threshold to :data:`YOUNG_THRESHOLD` (a higher one set by the
    host application is kept).

    Call it once the process is up (``serve`` does, after opening its services, before it
    answers): never per request, since a frozen object is never collected, even once it
    becomes garbage. Returns how many objects are frozen.
    """
    gc.collect()
    gc.freeze()
    young, older, oldest = gc.get_threshold()
    if young:  # 0 means the host turned automatic collection off: leave it so
        gc.set_threshold(max(young, YOUNG_THRESHOLD), older, oldest)
    return gc.get_freeze_count()
