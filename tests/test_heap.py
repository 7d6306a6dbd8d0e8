"""``runtime.heap.settle``: the start-up heap leaves the collector's full passes, and garbage
made afterwards is still collected (docs/operations.md, "Garbage collection pauses")."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from runtime.heap import settle


class Node:
    """A cycle-capable object that a weak reference can watch."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the suite runs with its usual collector


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
