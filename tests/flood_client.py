"""An attacking machine for the flood tests, run as its own process so its work does not
share the server's event loop: opens `--count` connections to 127.0.0.1 from the given
loopback source addresses, either sending nothing (`idle`) or trickling a request head
that never ends (`slowloris`), and waits until the server closes each. Prints a JSON list
of [seconds from connect to close, or null if still open at the deadline]."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time


async def one(port: int, source: str, mode: str, deadline: float) -> float | None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    opened = time.monotonic()

    async def trickle() -> None:
        with contextlib.suppress(ConnectionError):
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
            while True:
                writer.write(b"X")  # one more byte of a header line that never ends
                await writer.drain()
                await asyncio.sleep(0.1)

    task = asyncio.create_task(trickle()) if mode == "slowloris" else None
    try:
        with contextlib.suppress(ConnectionError):
            while await asyncio.wait_for(reader.read(4096), max(0.01, deadline - time.monotonic())):
                pass
        return time.monotonic() - opened
    except TimeoutError:
        return None
    finally:
        if task is not None:
            task.cancel()
        writer.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--sources", required=True, help="comma-separated loopback addresses")
    ap.add_argument("--mode", choices=("idle", "slowloris"), required=True)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    sources = args.sources.split(",")
    deadline = time.monotonic() + args.seconds
    spans = await asyncio.gather(*(one(args.port, sources[i % len(sources)], args.mode, deadline)
                                   for i in range(args.count)))
    print(json.dumps(spans))


if __name__ == "__main__":
    asyncio.run(main())
