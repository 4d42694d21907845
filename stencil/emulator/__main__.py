"""``python -m stencil.emulator --port N [--latency-mean-s 2 --capacity 50 ...]``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from stencil.emulator.knobs import Knobs
from stencil.emulator.server import make_server


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stencil.emulator", description="Serve an emulated Vertex AI endpoint."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=0, help="port (0 picks a free one)")
    for f in dataclasses.fields(Knobs):
        flag = "--" + f.name.replace("_", "-")
        if f.name in ("forbidden_tokens", "retired_models", "hostile"):
            parser.add_argument(flag, dest=f.name, action="append", help=f"add to {f.name}")
        elif f.name == "tiny_images":
            parser.add_argument(flag, dest=f.name, action="store_true", default=None)
        elif f.name in ("capacity", "seed", "long_field_chars"):
            parser.add_argument(flag, dest=f.name, type=int)
        elif f.name in ("require_token", "hostile_match"):
            parser.add_argument(flag, dest=f.name, type=str)
        else:
            parser.add_argument(flag, dest=f.name, type=float)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    knobs: dict[str, Any] = {
        name: value for name in Knobs.names() if (value := getattr(args, name, None)) is not None
    }
    server = make_server(args.host, args.port, **knobs)
    host, port = str(server.server_address[0]), int(server.server_address[1])
    # One line a parent process can read to learn the port.
    print(json.dumps({"url": f"http://{host}:{port}", "port": port}), flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stopping.set()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
