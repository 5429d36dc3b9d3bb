"""A misbehaving web instance for router tests; what it does depends on the path.

/partial   Content-Length: 100000, 12 bytes, then close
/bighead   a response head of 70 KiB
/close     answers with keep-alive, then closes the connection at once
/early     103 Early Hints, then 200 "ok"
anything else: 200 "ok" with keep-alive
"""

import asyncio
import os


async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1]
            if path == b"/partial":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nhello world!")
                await writer.drain()
                break
            if path == b"/bighead":
                writer.write(b"HTTP/1.1 200 OK\r\nX-Big: " + b"y" * 70_000 + b"\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
                continue
            if path == b"/early":
                writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
            await writer.drain()
            if path == b"/close":
                break
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    writer.close()


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", int(os.environ["PORT"]))
    async with server:
        await server.serve_forever()


asyncio.run(main())
