"""A Flask app three ways, for the memory diagnosis ($MODE):

shared     Flask's signed-cookie session, secret key from the environment: stateless
memory     a server-side session store in process memory (a dict keyed by a cookie)
random     Flask's session with a per-process random secret key (os.urandom)

/login (POST) starts a session; /me answers who you are, or (?redirect=1) sends you to /login.
"""

import os
import uuid

from flask import Flask, make_response, redirect, request, session

MODE = os.environ.get("MODE", "shared")
app = Flask(__name__)
app.secret_key = os.urandom(16) if MODE == "random" else os.environ.get("SECRET_KEY", "shared-secret")
STORE: dict[str, str] = {}


@app.post("/login")
def login():
    user = uuid.uuid4().hex[:6]
    if MODE == "memory":
        sid = uuid.uuid4().hex
        STORE[sid] = user
        response = make_response(f"hello {user}")
        response.set_cookie("sid", sid)
        return response
    session["user"] = user
    return f"hello {user}"


@app.get("/me")
def me():
    user = STORE.get(request.cookies.get("sid", "")) if MODE == "memory" else session.get("user")
    if user is None:
        if request.args.get("redirect"):
            return redirect("/login?next=/me")
        return "who are you?", 401
    return f"you are {user} ({os.environ.get('PS')})"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
