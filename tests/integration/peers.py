"""One small app for three real servers behind the router: gunicorn (``wsgi``), uvicorn (``asgi``)
and Python's http.server (run this file). Endpoints:

/echo     the request: method, body length and sha256, framing headers, the instance
/stream   a body of ?n= bytes sent without Content-Length (chunked, or to EOF on HTTP/1.0)
/sized    a body of ?n= bytes with Content-Length
/sink     reads the whole body, answers its length (uploads)
/empty    204        /cached   304
"""

import hashlib
import json
import os
from urllib.parse import parse_qs

NAME = os.environ.get("PS", "?")
BLOCK = b"x" * 65536


def _answer(method, path, query, headers, body):
    """(status, headers, body iterable, sized) for a request; shared by all three servers."""
    n = int(parse_qs(query).get("n", ["0"])[0])
    if path == "/echo":
        info = {"name": NAME, "method": method, "length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                "te": headers.get("transfer-encoding"), "cl": headers.get("content-length"),
                "port": headers.get("remote-port"), "host": headers.get("host")}
        data = json.dumps(info).encode()
        return 200, [("Content-Type", "application/json")], [data], len(data)
    if path == "/sink":
        data = str(len(body)).encode()
        return 200, [], [data], len(data)
    if path in ("/stream", "/sized"):
        chunks = [BLOCK[: min(65536, n - i)] for i in range(0, n, 65536)]
        return 200, [], chunks, n if path == "/sized" else None
    if path == "/empty":
        return 204, [], [], None
    if path == "/cached":
        return 304, [("ETag", '"v1"')], [], None
    return 404, [], [b"not found"], 9


def wsgi(environ, start_response):
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
    headers["remote-port"] = environ.get("REMOTE_PORT")
    if "CONTENT_LENGTH" in environ and environ["CONTENT_LENGTH"]:
        headers["content-length"] = environ["CONTENT_LENGTH"]
    body = b""
    if environ["PATH_INFO"] != "/sink":
        body = environ["wsgi.input"].read()
    else:
        size = 0
        while chunk := environ["wsgi.input"].read(65536):
            size += len(chunk)
        body = b""
        status, extra, chunks, sized = 200, [], [str(size).encode()], len(str(size))
        start_response("200 OK", [("Content-Length", str(sized))])
        return chunks
    status, extra, chunks, sized = _answer(environ["REQUEST_METHOD"], environ["PATH_INFO"],
                                           environ.get("QUERY_STRING", ""), headers, body)
    if sized is not None and status not in (204, 304):
        extra = [*extra, ("Content-Length", str(sized))]
    start_response(f"{status} X", extra)
    return chunks


async def asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    headers["remote-port"] = str(scope["client"][1]) if scope.get("client") else None
    body, size, more = b"", 0, True
    while more:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if scope["path"] != "/sink":
            body += chunk
        more = message.get("more_body", False)
    if scope["path"] == "/sink":
        data = str(size).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})
        return
    status, extra, chunks, sized = _answer(scope["method"], scope["path"], scope["query_string"].decode(),
                                           headers, body)
    out = [(k.encode(), v.encode()) for k, v in extra]
    if sized is not None and status not in (204, 304):
        out.append((b"content-length", str(sized).encode()))
    await send({"type": "http.response.start", "status": status, "headers": out})
    for chunk in chunks:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def main():
    import http.server
    from urllib.parse import urlsplit

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b""):
                            pass
                        return bytes(data)
                    data += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _serve(self):
            url = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            headers["remote-port"] = str(self.client_address[1])
            if url.path == "/sink" and "Content-Length" in self.headers:
                left, size = int(self.headers["Content-Length"]), 0
                while left:
                    got = len(self.rfile.read(min(left, 65536)))
                    size, left = size + got, left - got
                status, extra, chunks, sized = 200, [], [str(size).encode()], len(str(size))
            else:
                body = self._body() if self.command not in ("GET", "HEAD") or "Content-Length" in self.headers \
                    or "Transfer-Encoding" in self.headers else b""
                status, extra, chunks, sized = _answer(self.command, url.path, url.query, headers, body)
            self.send_response(status)
            for k, v in extra:
                self.send_header(k, v)
            if status in (204, 304):
                self.end_headers()
                return
            if sized is None:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                if self.command != "HEAD":
                    for chunk in chunks:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.write(b"0\r\n\r\n")
                return
            self.send_header("Content-Length", str(sized))
            self.end_headers()
            if self.command != "HEAD":
                for chunk in chunks:
                    self.wfile.write(chunk)

        do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _serve

    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
