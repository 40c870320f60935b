"""Start the Emulator Studio dashboard: ``python launch.py [--port 5006] [--show] [--data-dir DIR]``.

Only pages served under an allowed ``host:port`` may talk to it (the loopback names and ``--address``, plus
``--allow-websocket-origin``): a request with another Host header, or a websocket from another origin, gets 403.
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="localhost", help="interface to listen on (default: localhost)")
    parser.add_argument("--port", type=int, default=5006, help="port; 0 picks a free one (default: 5006)")
    parser.add_argument("--show", action="store_true", help="open the dashboard in a browser")
    parser.add_argument("--data-dir", help="data folder (default: $EMULATOR_STUDIO_DATA or ~/.cache/emulator-studio)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="compute device for jobs")
    parser.add_argument("--allow-websocket-origin", action="append", default=[], metavar="HOST[:PORT]",
                        help="another name browsers use to reach the server (repeatable), e.g. lab.example.org:5006")
    parser.add_argument("--auth", metavar="PASSWORD", help="ask every browser for this password on a login page "
                                                           "(Panel's basic auth); use it when serving beyond localhost")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, got {args.port}")
    if args.auth is not None and len(args.auth) < 8:
        parser.error("--auth: use a password of at least 8 characters")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.data_dir:
        os.environ["EMULATOR_STUDIO_DATA"] = str(Path(args.data_dir).expanduser().resolve())
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from engine.process import sleep_when_idle

    sleep_when_idle()  # before torch loads: the server's idle OpenMP threads (one team per building thread) sleep
    import panel as pn

    from app.dashboard import Studio
    from app.panel_internals import tornado_application
    from app.serving import BuiltAside, allowed_hosts, free_port, refuse_foreign_hosts
    from engine.data.catalog import install_defaults

    install_defaults()  # the built-in datasets, in place before the first visitor arrives

    port = args.port or free_port(args.address)
    allowed = allowed_hosts(args.address, port, args.allow_websocket_origin)
    auth = {"basic_auth": args.auth, "cookie_secret": secrets.token_hex(32)} if args.auth else {}
    application = BuiltAside(lambda: Studio(device=args.device).__panel__(), title="Emulator Studio")
    server = pn.serve({"/": application}, address=args.address, port=port, show=args.show, start=False,
                      websocket_origin=allowed, **auth)
    refuse_foreign_hosts(tornado_application(server), allowed)  # Bokeh checks Origin; this checks Host, for HTTP too
    server.start()
    # SIGTERM stops the loop and the interpreter exits normally: the jobs' semaphores are released, not leaked
    server.io_loop.asyncio_loop.add_signal_handler(signal.SIGTERM, server.io_loop.stop)
    print(f"Emulator Studio is running at http://{args.address}:{server.port}/", flush=True)
    server.io_loop.start()


if __name__ == "__main__":
    main()
