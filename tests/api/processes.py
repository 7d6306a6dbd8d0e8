"""A service process under test: started with a temporary data folder, its output read line
by line on threads (a readiness line, not a sleep, says when it serves)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[2]
READY = re.compile(r"phone-actions: serving on (http://\S+)")


class ServiceProcess:
    """``command`` running in its own process group; :meth:`wait_for` reads its lines."""

    def __init__(self, command: Sequence[str], data_dir: Path, **env: str) -> None:
        environ = {
            **os.environ,
            "PHONE_ACTIONS_DATA_DIR": str(data_dir),
            "PHONE_ACTIONS_DATABASE_URL": "",
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "200",
            **env,
        }
        environ.pop("PHONE_ACTIONS_DATABASE_URL")
        environ.update(env)
        self.process = subprocess.Popen(
            list(command),
            cwd=REPO,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[tuple[str, str]] = queue.Queue()
        self.seen: list[tuple[str, str]] = []
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        for name, stream in (("out", self.process.stdout), ("err", self.process.stderr)):
            threading.Thread(target=self._pump, args=(name, stream), daemon=True).start()

    def _pump(self, name: str, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put((name, line.rstrip("\n")))
        self.lines.put((name, "\0eof"))

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 120) -> re.Match[str]:
        """The first line (either stream, read so far or to come) matching ``pattern``;
        fails at EOF of both."""
        for _, line in self.seen:
            found = pattern.search(line)
            if found:
                return found
        ended = sum(1 for _, line in self.seen if line == "\0eof")
        while True:
            try:
                name, line = self.lines.get(timeout=timeout)
            except queue.Empty:
                shown = self.output()
                raise AssertionError(f"no line matching {pattern.pattern}: {shown}") from None
            self.seen.append((name, line))
            if line == "\0eof":
                ended += 1
                if ended == 2:
                    raise AssertionError(f"exited before {pattern.pattern}: {self.output()}")
                continue
            found = pattern.search(line)
            if found:
                return found

    def stop(self, signum: int = signal.SIGINT, timeout: float = 60) -> int:
        """Send ``signum`` to the process (as Ctrl-C would) and wait for its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        code = self.process.wait(timeout=timeout)
        while True:  # drain what is left, for output()
            try:
                self.seen.append(self.lines.get(timeout=5))
            except queue.Empty:
                break
            if sum(1 for _, line in self.seen if line == "\0eof") == 2:
                break
        return code

    def output(self) -> str:
        return "\n".join(f"{name}: {line}" for name, line in self.seen if line != "\0eof")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
