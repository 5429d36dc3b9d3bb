"""A worker that does not cope: the first error ends it."""
import os
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

# no retries: redis-py would otherwise reconnect by itself
r = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=3, socket_connect_timeout=1,
                         retry=Retry(NoBackoff(), 0))
while True:
    r.blpop("jobs", timeout=1)  # waiting for work, mid-read most of the time
