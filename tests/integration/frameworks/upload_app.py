"""A multi-step upload, the twelve-factor example of local state: a Flask app keeps the
uploaded file between two requests. $MODE:

tmpdir   in TMPDIR (tempfile), read back by the next request: 500 when another instance gets it
shared   in $STORE, a folder every instance shares (a stand-in for object storage): stateless
"""

import os
import tempfile
import uuid

from flask import Flask, request

MODE = os.environ.get("MODE", "shared")
app = Flask(__name__)


def folder():
    return tempfile.gettempdir() if MODE == "tmpdir" else os.environ["STORE"]


@app.post("/upload")
def upload():
    name = f"upload-{uuid.uuid4().hex[:12]}.csv"
    with open(os.path.join(folder(), name), "wb") as f:
        f.write(request.get_data())
    return {"id": name}, 201


@app.get("/process/<name>")
def process(name):
    with open(os.path.join(folder(), name), "rb") as f:  # FileNotFoundError: a 500, as in the wild
        return {"rows": f.read().count(b"\n")}
