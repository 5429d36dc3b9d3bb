"""Visits the web app with one session cookie and uploads a file, then exits 0.

With one web instance that is never disturbed, the visit count climbs and the
upload can be read back. Under chaos (restarts, relocations) or behind a
non-sticky router, neither holds: that state lived in one process.
"""

import os
import sys
import time
import urllib.error
import urllib.request

URL = os.environ.get("APP_URL") or f"http://127.0.0.1:{os.environ.get('WEB_PORT', '5000')}"
visits = int(sys.argv[1]) if len(sys.argv) > 1 else 8
cookie = ""


def call(path: str, data: bytes | None = None) -> str:
    global cookie
    request = urllib.request.Request(URL + path, data=data, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            cookie = (response.headers.get("Set-Cookie") or cookie).split(";")[0]
            return response.read().decode().strip()
    except urllib.error.HTTPError as exc:
        return exc.read().decode().strip()
    except (urllib.error.URLError, ConnectionError) as exc:
        return f"request failed: {getattr(exc, 'reason', exc)}"


for _ in range(100):  # wait for a web process to listen (directly or behind the router)
    answer = call("/")
    if not answer.startswith("request failed") and "is ready to take this request" not in answer:
        break
    time.sleep(0.1)
upload = ""
for i in range(visits):
    print(call("/"), flush=True)
    if i == 1:
        answer = call("/upload", b"hello")
        print(answer, flush=True)
        upload = answer.rsplit(" ", 1)[-1]
    elif upload and i % 3 == 0:
        print(call(f"/uploads/{upload}"), flush=True)
    time.sleep(0.5)
print("client done", flush=True)
