"""Start the Emulator Studio dashboard: ``python launch.py [--port 5006] [--show] [--data-dir DIR]``."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", default="localhost", help="interface to listen on (default: localhost)")
    parser.add_argument("--port", type=int, default=5006, help="port; 0 picks a free one (default: 5006)")
    parser.add_argument("--show", action="store_true", help="open the dashboard in a browser")
    parser.add_argument("--data-dir", help="data folder (default: $EMULATOR_STUDIO_DATA or ~/.cache/emulator-studio)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="compute device for jobs")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, got {args.port}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.data_dir:
        os.environ["EMULATOR_STUDIO_DATA"] = str(Path(args.data_dir).expanduser().resolve())
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import panel as pn

    from app.dashboard import Studio
    from engine.data.catalog import install_defaults

    install_defaults()  # the built-in datasets, in place before the first visitor arrives

    def session():
        return Studio(device=args.device).__panel__()

    server = pn.serve({"/": session}, address=args.address, port=args.port, show=args.show, start=False,
                      title="Emulator Studio", websocket_origin="*" if args.address != "localhost" else None)
    server.start()
    print(f"Emulator Studio is running at http://{args.address}:{server.port}/", flush=True)
    server.io_loop.start()


if __name__ == "__main__":
    main()
