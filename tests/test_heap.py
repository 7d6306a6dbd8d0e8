"""``runtime.heap.settle``: the start-up heap leaves the collector's full passes, work in flight
no longer sets off young passes, and garbage made afterwards is still collected
(docs/operations.md, "Garbage collection pauses")."""

from __future__ import annotations

import gc
import random
import weakref
from collections.abc import Iterator

import pytest

from runtime.heap import YOUNG_THRESHOLD, settle


class Node:
    """A cycle-capable object that a weak reference can watch."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def unfrozen() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()  # the rest of the suite runs with its usual collector
    gc.set_threshold(*thresholds)


def cycle() -> weakref.ref[Node]:
    one, two = Node(), Node()
    one.other, two.other = two, one
    return weakref.ref(one)


@pytest.mark.usefixtures("unfrozen")
def test_what_exists_at_settle_is_frozen_and_later_garbage_is_still_collected() -> None:
    kept = [Node() for _ in range(10_000)]
    frozen = settle()
    assert frozen >= len(kept)
    assert gc.get_freeze_count() == frozen
    full_pass = {id(obj) for obj in gc.get_objects(generation=2)}
    assert not any(id(node) in full_pass for node in kept)

    later = cycle()  # garbage made once the service is up: no leak
    assert later() is not None
    gc.collect()
    assert later() is None


@pytest.mark.usefixtures("unfrozen")
def test_garbage_at_settle_is_collected_not_frozen() -> None:
    before = cycle()
    settle()
    assert before() is None


def young_passes_under_load() -> int:
    """Young passes while 50 deliveries of 50 to 150 objects each are in flight, 20,000 of
    them finishing one by one and another starting: objects that all stay alive until their
    delivery is over, as the pipeline's do."""
    gc.collect()
    before = int(gc.get_stats()[0]["collections"])
    pick = random.Random(7)
    in_flight = [[Node() for _ in range(100)] for _ in range(50)]
    for _ in range(20_000):
        in_flight.pop(pick.randrange(len(in_flight)))
        in_flight.append([Node() for _ in range(pick.randrange(50, 150))])
    return int(gc.get_stats()[0]["collections"]) - before


@pytest.mark.usefixtures("unfrozen")
def test_work_in_flight_sets_off_no_young_passes_once_settled() -> None:
    gc.set_threshold(700, 10, 10)  # CPython's default
    assert young_passes_under_load() >= 20  # each one finds every object alive
    settle()
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    assert young_passes_under_load() == 0


@pytest.mark.usefixtures("unfrozen")
def test_cycles_made_once_settled_are_still_collected_without_an_explicit_pass() -> None:
    settle()
    passes = gc.get_stats()[0]["collections"]
    cycles = [cycle() for _ in range(YOUNG_THRESHOLD)]  # two objects each, all garbage
    assert gc.get_stats()[0]["collections"] > passes
    assert sum(ref() is None for ref in cycles) > YOUNG_THRESHOLD // 2


@pytest.mark.usefixtures("unfrozen")
def test_a_host_that_chose_a_higher_threshold_or_none_keeps_its_choice() -> None:
    gc.set_threshold(50_000, 20, 20)
    settle()
    assert gc.get_threshold() == (50_000, 20, 20)
    gc.set_threshold(0, 10, 10)  # automatic collection off
    settle()
    assert gc.get_threshold() == (0, 10, 10)
