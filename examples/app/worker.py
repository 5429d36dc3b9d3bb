"""A worker that does a job every second and keeps nothing between jobs."""

import os
import time

n = 0
while True:
    n += 1
    print(f"job {n} done by {os.environ.get('PS', 'worker')}", flush=True)
    time.sleep(1)
