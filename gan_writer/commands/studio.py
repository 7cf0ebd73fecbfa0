"""``gan-writer studio --ckpt X [--host 127.0.0.1] [--port 7860] [--session FILE]``: the local web
studio (see gan_writer.cowrite.server): one model per server, bound to loopback by default."""
from __future__ import annotations

import argparse
import errno
import sys

from gan_writer.commands.cowrite import add_session_arguments, open_session

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_session_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860; 0 picks a free one)")


def check_port(port: int) -> None:
    """Refuse a ``--port`` outside 0..65535 (before the checkpoint is loaded)."""
    if not 0 <= port <= 65535:
        raise ValueError(f"--port {port} is not a port number: choose one in 0..65535 (0 picks a free one)")


def _serve(session, host: str, port: int):
    """:func:`make_server`, with an error that names ``host:port`` when it cannot bind."""
    from gan_writer.cowrite.server import make_server

    try:
        return make_server(session, host, port)
    except OSError as err:
        where = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        if err.errno == errno.EADDRINUSE:
            raise OSError(f"cannot serve on {where}: the address is already in use; choose another --port "
                          "(0 picks a free one) or stop the program using it") from None
        raise OSError(f"cannot serve on {where} ({err.strerror or err}); check --host and --port") from None


def run(args: argparse.Namespace) -> int:
    from gan_writer.commands.errors import report

    try:
        check_port(args.port)
        session = open_session(args)
        server = _serve(session, args.host, args.port)
    except (FileNotFoundError, ValueError, ModuleNotFoundError, OSError) as err:
        return report("gan-writer studio", err)
    if args.host not in LOOPBACK:
        print(f"gan-writer studio: warning: serving on {args.host}; anyone who can reach it can use the model and "
              "edit the session (there is no login)", file=sys.stderr)
    host, port = server.server_address[:2]
    print(f"gan-writer studio: open http://{host}:{port}/  (Ctrl-C stops; "
          f"{'session saved to ' + str(session.path) if session.path else 'no --session: the session is not kept'})",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
