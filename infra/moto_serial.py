"""moto's server, with each request handled atomically.

moto applies a TransactWriteItems action by action and rolls a failed one back by restoring a copy
of the whole table taken before it started. Under moto_server's threaded request handling, two
concurrent transactions can interleave, and a rollback can erase another request's committed
writes -- something DynamoDB never does. Tests here run concurrent writers on purpose, so this
launcher serves moto's own application behind one lock: requests still arrive concurrently, each
is processed alone, as DynamoDB's per-request atomicity would have it.

Usage: python infra/moto_serial.py -H 127.0.0.1 -p PORT
"""
import argparse
import os
import signal
import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


class Serialized:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            # Materialise the body inside the lock: the work happens while iterating.
            return list(self.app(environ, start_response))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, Serialized(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
