"""A small Django shop as tutorials write one, in one file. $MODE picks where its state lives:

stateful   the cart in a module-level dict (its id in the signed-cookie session), the price
           through Django's default cache (LocMemCache: one per process) invalidated by the
           view that changes it, a visit counter in a global
stateless  the twin: the cart in the session, the same cache code on a cache every process
           shares (FileBasedCache in $CACHE_DIR), the counter in that cache

Both serve a page with Django's CSRF token, the time and the instance's name, and change
state only by CSRF-checked POSTs. Served by gunicorn:
``gunicorn -b 127.0.0.1:$PORT -w 1 shop_django:application``.
"""

import fcntl
import json
import os
import secrets
import time

from django.conf import settings

MODE = os.environ.get("MODE", "stateless")
settings.configure(
    DEBUG=False,
    SECRET_KEY=os.environ.get("SECRET_KEY", "dev-secret"),
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.sessions"],
    MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",  # (startproject's, in its order)
                "django.middleware.common.CommonMiddleware",
                "django.middleware.csrf.CsrfViewMiddleware"],
    SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
    CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"} if MODE == "stateful" else
            {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": os.environ["CACHE_DIR"]}},
    DATABASES={},
    TEMPLATES=[],
)

from django.core.cache import cache  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse, JsonResponse  # noqa: E402
from django.middleware.csrf import get_token  # noqa: E402
from django.urls import path  # noqa: E402

CARTS: dict[str, list[str]] = {}
VISITS = 0


def database(change=None):
    """The shared database (a JSON file): read it, or change it under a lock."""
    with open(os.environ["STORE"], "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        data = json.loads(f.read() or '{"price": "10.00"}')
        if change is not None:
            change(data)
            f.seek(0)
            f.truncate()
            f.write(json.dumps(data))
        return data


def home(request):
    return HttpResponse(f"<html><body><h1>Shop</h1><p>{os.environ['PS']} at {time.time()}</p>"
                        f'<form method="post" action="/cart"><input type="hidden" name="csrfmiddlewaretoken" '
                        f'value="{get_token(request)}"><input name="item"></form></body></html>')


def cart(request):
    if request.method == "POST":
        if MODE == "stateful":
            cart_id = request.session.setdefault("cart", secrets.token_hex(8))
            CARTS.setdefault(cart_id, []).append(request.POST["item"])
        else:
            request.session["items"] = request.session.get("items", []) + [request.POST["item"]]
        return JsonResponse({"ok": True})
    items = CARTS.get(request.session.get("cart", ""), []) if MODE == "stateful" else request.session.get("items", [])
    return JsonResponse({"cart": {"lines": [{"product": i} for i in items], "count": len(items)},
                         "instance": os.environ["PS"], "generated": time.strftime("%Y-%m-%dT%H:%M:%S")})


def price(request):
    if request.method == "POST":
        database(lambda data: data.update(price=request.POST["price"]))
        cache.delete("price")  # invalidated: in this process only, when the cache is local memory
        return JsonResponse({"ok": True})
    return JsonResponse({"product": "tea", "price": cache.get_or_set("price", lambda: database()["price"], None)})


def visits(request):
    global VISITS
    if MODE == "stateful":
        VISITS += 1
        count = VISITS
    else:
        cache.add("visits", 0, None)
        count = cache.incr("visits")
    return HttpResponse(f"<html><body><p id=\"visits\">{count} visits</p></body></html>")


urlpatterns = [path("", home), path("cart", cart), path("price", price), path("visits", visits)]
application = get_wsgi_application()
