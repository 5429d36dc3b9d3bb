"""A user of the web app: logs in, visits /me, uploads a file and reads it back, then exits 0.

With one web instance that is never disturbed every answer is a success. Behind a
non-sticky router, or under chaos, the stateful app (examples/app/web.py) forgets
the session (401) and loses the upload (404): that state lived in one process.
"""

import os
import sys
import time
import urllib.error
import urllib.request

URL = os.environ.get("APP_URL") or f"http://127.0.0.1:{os.environ.get('WEB_PORT', '5000')}"
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 8
pause = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5
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
print(call("/login", b""), flush=True)
upload, forgotten = "", 0
for i in range(rounds):
    me = call("/me")
    print(me, flush=True)
    forgotten = forgotten + 1 if "who are you" in me else 0
    if forgotten >= 2:  # asked twice who we are: log in again, as a user would
        print(call("/login", b""), flush=True)
        forgotten = 0
    if i == 1:
        answer = call("/upload", b"hello")
        print(answer, flush=True)
        upload = answer.rsplit(" ", 1)[-1]
    elif upload and i % 3 == 0:
        print(call(f"/uploads/{upload}"), flush=True)
    time.sleep(pause)
print("client done", flush=True)
