"""A small Flask shop as tutorials write one. $MODE picks where its state lives:

stateful   the cart in a module-level dict (its id in the signed session cookie), the price
           cached in the process after its first read and invalidated by the view that changes
           it (in that process only), a visit counter in a global
stateless  the twin: the cart in the session cookie, the price and the counter read from the
           shared store ($STORE, a JSON file standing for the database) every time

Every mode also serves what must never be a finding: a page with the time, a CSRF-like
token, the instance's name and pid (/), a conditional GET (/catalog, ETag), a large download
(/export.csv, an attachment), a large page (/big), and a server-sent event stream (/events).
Served by gunicorn: ``gunicorn -b 127.0.0.1:$PORT -w 1 shop_flask:app``.
"""

import fcntl
import json
import os
import secrets
import time

from flask import Flask, Response, jsonify, request, session

MODE = os.environ.get("MODE", "stateless")
STORE = os.environ["STORE"]
app = Flask(__name__)
app.secret_key = os.environ.get("SECRET_KEY", "dev-secret")
CARTS: dict[str, list[str]] = {}  # stateful: every cart, in this process only
PRICE_CACHE: dict[str, str] = {}  # stateful: the price as this process first read it
HITS = 0  # stateful: visits this process served


def store(change=None):
    """The shared store (a database): read it, or change it under a lock."""
    with open(STORE, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        data = json.loads(f.read() or '{"price": "10.00", "hits": 0}')
        if change is not None:
            change(data)
            f.seek(0)
            f.truncate()
            f.write(json.dumps(data))
        return data


@app.get("/")
def home():
    token = secrets.token_hex(16)
    return (f"<html><body><h1>Shop</h1><p class=served>Served by {os.environ['PS']} (pid {os.getpid()}) at "
            f"{time.strftime('%H:%M:%S')}.{time.time() % 1:.6f}</p><form method=post action=/cart>"
            f"<input type=hidden name=csrf value={token}><input name=item></form></body></html>")


@app.post("/cart")
def add():
    item = request.form["item"]
    if MODE == "stateful":
        cart = session.setdefault("cart", secrets.token_hex(8))
        CARTS.setdefault(cart, []).append(item)
    else:
        session["items"] = session.get("items", []) + [item]
    return jsonify(ok=True)


@app.get("/cart")
def cart():
    items = CARTS.get(session.get("cart", ""), []) if MODE == "stateful" else session.get("items", [])
    return jsonify(items=[{"name": i, "qty": 1} for i in items], total=len(items), served_by=os.environ["PS"],
                   at=time.time())


@app.post("/price")
def set_price():
    store(lambda data: data.update(price=request.form["price"]))
    PRICE_CACHE.pop("price", None)  # invalidated: in this process only
    return jsonify(ok=True)


@app.get("/price")
def price():
    if MODE == "stateful":
        value = PRICE_CACHE.setdefault("price", store()["price"])
    else:
        value = store()["price"]
    return jsonify(product="tea", price=value, currency="EUR")


@app.get("/visits")
def visits():
    global HITS
    if MODE == "stateful":
        HITS += 1
        count = HITS
    else:
        count = store(lambda data: data.update(hits=data["hits"] + 1))["hits"]
    return f"<html><body><p id=visits>Visits: {count}</p></body></html>"


@app.get("/catalog")
def catalog():
    body = json.dumps({"products": ["tea", "coffee"], "from": os.environ["PS"]})
    tag = '"catalog-v1"'
    if request.headers.get("If-None-Match") == tag:
        return Response(status=304, headers={"ETag": tag})
    return Response(body, mimetype="application/json", headers={"ETag": tag})


@app.get("/export.csv")
def export():
    rows = "".join(f"{i},{os.environ['PS']},{secrets.token_hex(8)}\n" for i in range(20_000))
    return Response(rows, mimetype="text/csv", headers={"Content-Disposition": "attachment; filename=export.csv"})


@app.get("/big")
def big():
    return Response(os.environ["PS"] + secrets.token_hex(200_000), mimetype="text/plain")


@app.get("/events")
def events():
    def stream():
        for i in range(3):
            yield f"data: {os.environ['PS']} {time.time()} {secrets.token_hex(4)}\n\n"
            time.sleep(0.05)
    return Response(stream(), mimetype="text/event-stream")
