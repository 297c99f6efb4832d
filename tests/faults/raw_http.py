"""An open-loop GET load on raw keep-alive HTTP/1.1, cheap enough to share two cores with the servers.

httpx costs a few milliseconds of the client's CPU per request; at 200 home pages a
second from threads on the machine that also runs the API and the model server, the
load generator itself capped the rate near 165/s. This client sends prepared request
bytes from one asyncio loop (its own thread) and reads back only the status line,
``Content-Length`` and the body, as ``bench/bench_api.py`` does; answers are kept as
bytes and parsed only when a test looks at them.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


def prepare(url: str, path: str, headers: dict[str, str]) -> bytes:
    """The bytes of one keep-alive GET of ``path`` on ``url``'s host."""
    host = urlsplit(url).netloc
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class _Pool:
    """Idle keep-alive connections, reused oldest first."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: deque[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = deque()

    async def get(self, request: bytes) -> tuple[int, bytes]:
        reused = bool(self.idle)
        reader, writer = self.idle.popleft() if reused else await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            match = _CONTENT_LENGTH.search(head)
            body = await reader.readexactly(int(match.group(1))) if match else b""
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            writer.close()
            if reused and not getattr(exc, "partial", b""):  # an idle connection the server closed: once more
                return await self.get(request)
            raise OSError(f"bad response: {exc}") from exc
        except BaseException:
            writer.close()
            raise
        self.idle.append((reader, writer))
        return status, body

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


class OpenLoopLoad:
    """GET requests at ``rate`` per second until stopped or ``max_s`` passed, at most ``max_in_flight`` at once.

    Sent on schedule whatever the answers' latency, like a fleet of clients, except
    that no more than ``max_in_flight`` wait at once (a fleet's connections are finite
    too): a server that falls behind is not buried under a queue that would time out
    every request, health checks included; the schedule slips instead, which
    ``max_lag_s`` and the achieved rate show. ``request(n)`` gives the n-th request's
    bytes and a label; ``record(label, status, body)`` receives every answer (status 0:
    no answer within 10 s or a broken connection).
    """

    def __init__(
        self,
        url: str,
        rate: float,
        max_s: float,
        request: Callable[[int], tuple[bytes, str]],
        record: Callable[[str, int, bytes], None],
        max_in_flight: int = 32,
    ) -> None:
        parts = urlsplit(url)
        self._pool = _Pool(parts.hostname or "127.0.0.1", parts.port or 80)
        self.rate, self.max_s, self.max_in_flight = rate, max_s, max_in_flight
        self._request, self._record = request, record
        self.stopped = threading.Event()
        self.sent = 0
        self.elapsed_s = 0.0
        #: How far behind its schedule the sending fell at worst (a starved load generator).
        self.max_lag_s = 0.0
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self.stopped.set()
        self._thread.join(timeout=timeout)

    async def _one(self, n: int, slots: asyncio.Semaphore) -> None:
        payload, label = self._request(n)
        try:
            status, body = await asyncio.wait_for(self._pool.get(payload), timeout=10)
        except (OSError, TimeoutError):
            status, body = 0, b""
        finally:
            slots.release()
        self._record(label, status, body)

    async def _main(self) -> None:
        tasks: set[asyncio.Task[None]] = set()
        slots = asyncio.Semaphore(self.max_in_flight)
        started = time.perf_counter()
        while not self.stopped.is_set() and time.perf_counter() - started < self.max_s:
            delay = started + self.sent / self.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            self.max_lag_s = max(self.max_lag_s, time.perf_counter() - (started + self.sent / self.rate))
            task = asyncio.create_task(self._one(self.sent, slots))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            self.sent += 1
        self.elapsed_s = time.perf_counter() - started
        await asyncio.gather(*tasks)
        self._pool.close()
