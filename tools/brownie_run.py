#!/usr/bin/env python3
"""`brownie run SCRIPT --network NET` that works from any project path.

brownie 1.22.2 imports a script by turning its absolute path into a dotted module name, so
`brownie run` fails when any parent folder's name has a dot (e.g. `mktemp -d`'s /tmp/tmp.XXXX).
This runner loads the project and connects to the network the same way, then runs the script's
`main()`; the launched development chain is stopped afterwards.

    python tools/brownie_run.py scripts/deploy.py --network medledger-ganache [--arg VALUE ...]
"""
import argparse
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("script", type=Path)
    parser.add_argument("--network", required=True)
    parser.add_argument("--arg", action="append", default=[], help="positional argument for main()")
    args = parser.parse_args()

    from brownie import network, project

    loaded = project.load(ROOT)
    loaded.load_config()
    loaded._add_to_main_namespace()
    network.connect(args.network)
    try:
        namespace = runpy.run_path(str(args.script), run_name="__brownie_script__")
        namespace["main"](*args.arg)
    finally:
        if network.is_connected():
            network.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
