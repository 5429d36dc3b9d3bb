"""A Flask app with Flask-Login as its tutorial writes it, and Flask-Session for server-side
sessions. $MODE:

random   app.secret_key = os.urandom(24), the tutorial's line (per process)
memory   Flask-Session with an in-process cache (cachelib's SimpleCache): sessions in memory
files    Flask-Session's filesystem backend: session files in ./flask_session, the local disk
shared   the secret key from the environment, Flask's signed-cookie session: stateless

Served by gunicorn: ``gunicorn -b 127.0.0.1:$PORT flask_login_app:app``.
"""

import os

from flask import Flask, jsonify, redirect, request
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user

MODE = os.environ.get("MODE", "shared")
app = Flask(__name__)
app.secret_key = os.urandom(24) if MODE == "random" else os.environ.get("SECRET_KEY", "dev-secret")
if MODE == "memory":
    from cachelib import SimpleCache
    from flask_session import Session

    app.config.update(SESSION_TYPE="cachelib", SESSION_CACHELIB=SimpleCache())
    Session(app)
elif MODE == "files":
    from flask_session import Session

    app.config.update(SESSION_TYPE="filesystem")
    Session(app)

login_manager = LoginManager(app)
login_manager.login_view = "login"


class User(UserMixin):
    def __init__(self, user_id):
        self.id = user_id


@login_manager.user_loader
def load_user(user_id):
    return User(user_id)


@app.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "POST":
        login_user(User(request.form["username"]))
        return redirect(request.args.get("next") or "/me")
    return '<form method="post"><input name="username"></form>'


@app.get("/me")
@login_required
def me():
    return jsonify(user=current_user.id)


@app.get("/me/items")
@login_required
def items():
    return jsonify(items=[])
