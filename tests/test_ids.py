"""``runtime.ids.new_id``: identifiers read from the CSPRNG in blocks stay unique across
threads and across a fork (a child must never hand out the ids its parent will)."""

from __future__ import annotations

import itertools
import os
import threading

import pytest

from runtime import ids
from runtime.ids import new_id


def test_threads_drawing_at_once_never_get_the_same_id() -> None:
    barrier = threading.Barrier(8)
    drawn: list[list[str]] = [[] for _ in range(8)]

    def draw(mine: list[str]) -> None:
        barrier.wait()
        mine.extend(new_id() for _ in range(20_000))  # many blocks of 256: refills race too

    threads = [threading.Thread(target=draw, args=(mine,)) for mine in drawn]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [one for mine in drawn for one in mine]
    assert len(set(every)) == len(every) == 160_000
    assert all(len(one) == 32 and int(one, 16) >= 0 for one in every)


@pytest.mark.parametrize("at_fork_hooks", [True, False])
def test_a_forked_child_draws_ids_its_parent_never_does(
    at_fork_hooks: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids._state = (os.getpid(), os.urandom(4096), itertools.count())
    new_id()  # the parent holds a block it has barely used
    if not at_fork_hooks:  # a child made by libc's fork(): only the pid check tells
        monkeypatch.setattr(ids, "_forget", lambda: None)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's side
        try:
            os.write(write, "".join(new_id() for _ in range(300)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        text = pipe.read().decode()
    os.waitpid(child, 0)
    childs = {text[i : i + 32] for i in range(0, len(text), 32)}
    parents = {new_id() for _ in range(300)}
    assert len(childs) == 300
    assert not childs & parents
