"""``gan-writer studio --ckpt X [--host 127.0.0.1] [--port 7860] [--session FILE]``: the local web
studio (see gan_writer.cowrite.server): one model per server, bound to loopback by default."""
from __future__ import annotations

import argparse
import sys

from gan_writer.commands.cowrite import add_session_arguments, open_session

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_session_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860; 0 picks a free one)")


def run(args: argparse.Namespace) -> int:
    from gan_writer.cowrite.server import make_server

    try:
        session = open_session(args)
        server = make_server(session, args.host, args.port)
    except (FileNotFoundError, ValueError, ModuleNotFoundError, OSError) as err:
        print(f"gan-writer studio: error: {err}", file=sys.stderr)
        return 2
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
