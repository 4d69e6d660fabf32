"""gunicorn's gevent worker with the API's JSON error answers (see
:mod:`app.api.gunicorn_worker`). A module of its own because importing gunicorn's gevent
worker imports gevent, which a gthread API never needs."""

from __future__ import annotations

from gunicorn.workers.ggevent import GeventWorker

from app.api.gunicorn_worker import JsonErrors


class JsonErrorGeventWorker(JsonErrors, GeventWorker):
    """``gevent``, with gunicorn's own error answers in the API's JSON error shape."""
