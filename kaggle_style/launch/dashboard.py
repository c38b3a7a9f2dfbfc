"""`optuna-dashboard` on a study's storage, served on loopback only.

The dashboard has no login: on 127.0.0.1 only this box sees it; from a laptop, forward the port
(`ssh -L 8080:127.0.0.1:8080 box`). Storages open as `tune` opens them (journal files too).
"""

from __future__ import annotations

from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

LOOPBACK = "127.0.0.1"


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # one line per request is noise here
        pass


def dashboard_server(storage_url: str, port: int = 8080) -> WSGIServer:
    """A WSGI server bound to 127.0.0.1:`port` (0: any free port), not yet serving."""
    from pathlib import Path

    from optuna_dashboard import wsgi

    from kaggle_style.errors import UserError
    from kaggle_style.tuning.study import open_storage

    if storage_url.startswith("sqlite:///") and not Path(storage_url[10:]).is_file():
        raise UserError(
            f"no study file {storage_url[10:]}: give STORAGE= the URL `make tune` "
            "used (default sqlite:///studies/<study>.db)"
        )
    return make_server(LOOPBACK, port, wsgi(open_storage(storage_url)), handler_class=_QuietHandler)


def serve_dashboard(storage_url: str, port: int = 8080) -> None:
    """Serve until interrupted."""
    from kaggle_style.tuning.study import masked

    server = dashboard_server(storage_url, port)
    print(
        f"optuna-dashboard for {masked(storage_url)}: "
        f"http://{LOOPBACK}:{server.server_port}/dashboard (Ctrl-C stops it)",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
