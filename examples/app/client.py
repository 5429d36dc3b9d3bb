"""Visits the web app a few times with one session cookie, then exits 0.

With one web instance the visit count climbs; behind a non-sticky router
with several instances it does not: the session lived in one process.
"""

import os
import sys
import time
import urllib.error
import urllib.request

url = os.environ.get("APP_URL") or f"http://127.0.0.1:{os.environ.get('WEB_PORT', '5000')}/"
visits = int(sys.argv[1]) if len(sys.argv) > 1 else 8
cookie = ""
for attempt in range(50):  # wait for the web process to listen
    try:
        urllib.request.urlopen(url, timeout=2).read()
        break
    except (urllib.error.URLError, ConnectionError):
        time.sleep(0.1)
for _ in range(visits):
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(request, timeout=5) as response:
        cookie = (response.headers.get("Set-Cookie") or cookie).split(";")[0]
        print(response.read().decode().strip(), flush=True)
    time.sleep(0.5)
print("client done", flush=True)
