"""A worker that copes: redis-py reconnects on the next command; errors are logged and retried."""
import os
import time

import redis

r = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=3, socket_connect_timeout=1)
while True:
    try:
        r.blpop("jobs", timeout=1)
    except redis.RedisError as exc:
        print("steady: retrying after", type(exc).__name__, flush=True)
        time.sleep(0.2)
