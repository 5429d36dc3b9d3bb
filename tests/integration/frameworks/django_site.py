"""A small Django site as the tutorials write one, in one file: sessions, a login form with
CSRF, ``login_required``-style views. $MODE picks where the session lives:

memory   SESSION_ENGINE cache, with Django's default local-memory cache (per process)
random   signed-cookie sessions with a SECRET_KEY made at start (get_random_secret_key())
shared   signed-cookie sessions with SECRET_KEY from the environment: stateless

Served by gunicorn: ``gunicorn -b 127.0.0.1:$PORT django_site:application``.
"""

import os

from django.conf import settings
from django.core.management.utils import get_random_secret_key

MODE = os.environ.get("MODE", "shared")
settings.configure(
    DEBUG=False,
    SECRET_KEY=get_random_secret_key() if MODE == "random" else os.environ.get("SECRET_KEY", "dev-secret"),
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.sessions"],
    MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                "django.middleware.csrf.CsrfViewMiddleware"],
    SESSION_ENGINE="django.contrib.sessions.backends.cache" if MODE == "memory"
    else "django.contrib.sessions.backends.signed_cookies",
    CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
    DATABASES={},
    TEMPLATES=[],
)

from functools import wraps  # noqa: E402

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse, JsonResponse  # noqa: E402
from django.middleware.csrf import get_token  # noqa: E402
from django.shortcuts import redirect  # noqa: E402
from django.urls import path  # noqa: E402


def login_required(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if "user" not in request.session:
            return redirect(f"/accounts/login/?next={request.path}")
        return view(request, *args, **kwargs)
    return wrapped


def login(request):
    if request.method == "POST":
        request.session["user"] = request.POST["username"]
        request.session["items"] = []
        return redirect(request.GET.get("next", "/me"))
    return HttpResponse(f'<form method="post"><input name="csrfmiddlewaretoken" value="{get_token(request)}">'
                        '<input name="username"></form>')


@login_required
def me(request):
    return JsonResponse({"user": request.session["user"]})


@login_required
def items(request):
    return JsonResponse({"items": request.session.get("items", [])})


urlpatterns = [path("accounts/login/", login), path("me", me), path("me/items", items)]
application = get_wsgi_application()
