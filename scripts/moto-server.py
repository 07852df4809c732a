"""moto's server (the local DynamoDB/SNS/KMS-compatible endpoint), serving one AWS request
at a time.

Run it with the virtualenv's Python, with moto_server's own options:

    .venv/bin/python scripts/moto-server.py -H 127.0.0.1 -p 5000

Why not `moto_server` itself: its HTTP server runs each request on its own thread, and moto
checks a condition and writes in separate steps (`put_item` reads the current item, parses
the condition expression, then stores; transactions likewise). Two concurrent conditional
writes to one key can therefore both pass their condition, which DynamoDB never allows: the
retry storm saw two requests both claim one idempotency reference, and send two SMS. With
each request served whole under one lock, every write is atomic, as in DynamoDB.
Connections are still accepted concurrently; only the work is in turn.
"""

import threading

from moto import server
from moto.moto_server import werkzeug_app

_one_at_a_time = threading.Lock()
_serve = werkzeug_app.DomainDispatcherApplication.__call__


def _serve_in_turn(self, environ, start_response):
    with _one_at_a_time:
        # The body is produced inside the lock too: moto builds some answers lazily.
        return list(_serve(self, environ, start_response))


werkzeug_app.DomainDispatcherApplication.__call__ = _serve_in_turn

if __name__ == "__main__":
    server.main()
