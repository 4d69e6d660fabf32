"""gunicorn's gevent worker with the API's JSON error answers (see
:mod:`app.api.gunicorn_worker`), taking its keep-alive connections in turn. A module of its
own because importing gunicorn's gevent worker imports gevent, which a gthread API never
needs."""

from __future__ import annotations

from typing import Any

import gevent
from gunicorn.workers.ggevent import GeventWorker

from app.api.gunicorn_worker import JsonErrors


class JsonErrorGeventWorker(JsonErrors, GeventWorker):
    """``gevent``, with gunicorn's own error answers in the API's JSON error shape, and fair
    to every connection it holds."""

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> bool:
        """Serve one request, then let the other connections of this process have their turn
        before reading this connection's next one.

        A greenlet serves a keep-alive connection in a loop, and nothing in a request on
        SQLite makes it wait on gevent: when its client sends the next request at once, it
        is already buffered, the read returns without switching, and the greenlet goes on
        serving that one client while the process's other connections wait; measured at 8
        clients (benchmarks/bench_api_beside_worker.py), p50 3.7 ms but p99 470 ms and 2.4 s
        at most. ``gevent.sleep(0)`` puts this greenlet behind the others that are ready, and
        the event loop looks for input at least once per switch interval (5 ms), so another
        connection waits at most that long for its turn (tests/api/test_serving_fairness.py):
        p99 22 ms in the same run.
        """
        handled = super().handle_request(listener_name, req, sock, addr)
        gevent.sleep(0)
        return handled
