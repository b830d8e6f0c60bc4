"""A minimal HTTP/1.1 server (stdlib asyncio) for t/54-push-many.t and the
push benchmark.

    barrier.py PORT N STATEFILE   hold every request until N are open at
                                  once, then answer them all 200 (a client
                                  that cannot keep N in flight gets nothing
                                  until the 60 s give-up: 503)
    barrier.py PORT 0 STATEFILE   answer every request 200 at once

Keep-alive; counts requests, connections and the most requests open at
once into STATEFILE (JSON) whenever they change."""
import asyncio
import json
import sys

port, need, state_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
st = {"requests": 0, "open": 0, "max_open": 0, "connections": 0,
      "answered": 0}
gate = asyncio.Event()


def save():
    with open(state_file + ".tmp", "w") as f:
        json.dump(st, f)
    import os
    os.replace(state_file + ".tmp", state_file)


async def handle(reader, writer):
    st["connections"] += 1
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            st["requests"] += 1
            st["open"] += 1
            st["max_open"] = max(st["max_open"], st["open"])
            status = b"200 OK"
            if need:
                if st["open"] >= need:
                    gate.set()
                    save()
                try:
                    await asyncio.wait_for(gate.wait(), 60)
                except asyncio.TimeoutError:
                    status = b"503 Service Unavailable"
            st["open"] -= 1
            st["answered"] += 1
            # it stands in for the deferred handler: its ack
            # (push_require_ack) on success
            ack = (b"X-Deferred-Result: ok\r\n" if status == b"200 OK"
                   else b"")
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n"
                         + ack + b"Content-Type: text/plain\r\n\r\nok")
            await writer.drain()
            if need and st["answered"] % 100 == 0:
                save()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", port,
                                        backlog=4096)
    save()
    async with server:
        while True:
            await asyncio.sleep(0.2)
            save()

asyncio.run(main())
