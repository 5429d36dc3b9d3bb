"""A test web instance: echoes what the router sent, streams, stalls and speaks WebSocket."""

import base64
import hashlib
import http.server
import json
import os
import time

NAME = os.environ.get("PS", "?")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body: bytes, chunked=False):
        self.send_response(status)
        self.send_header("X-Backend", NAME)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 7):
                part = body[i:i + 7]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self):
        if self.path == "/slow":
            time.sleep(3)
        if self.path == "/ws":
            return self.websocket()
        info = {"name": NAME, "headers": {k.lower(): v for k, v in self.headers.items()}}
        self.send(200, json.dumps(info).encode(), chunked=self.path == "/chunked")

    def do_POST(self):
        data = self.body()
        self.send(200, b"%s got %d bytes: %s" % (NAME.encode(), len(data), data[:40]), chunked=True)

    def websocket(self):
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept.decode())
        self.end_headers()
        self.wfile.flush()
        while True:  # echo text frames (client frames are masked, short payloads)
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            length = head[1] & 0x7F
            mask = self.rfile.read(4)
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            if head[0] & 0x0F == 8:
                return
            reply = f"{NAME} echoes {payload.decode()}".encode()
            self.wfile.write(bytes([0x81, len(reply)]) + reply)
            self.wfile.flush()


if __name__ == "__main__":
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    server.daemon_threads = True
    print(f"{NAME} listening", flush=True)
    server.serve_forever()
