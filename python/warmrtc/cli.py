"""The warmrtc command: ``warmrtc demo`` shows pre-warming; ``warmrtc emulator`` runs the
local realtime service."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="warmrtc", description=__doc__)
    parser.add_argument("command", choices=["demo", "emulator"], help="what to run")
    args, rest = parser.parse_known_args(argv[:1])
    if args.command == "emulator":
        from .emulator.__main__ import main as emulator_main

        emulator_main(rest + argv[1:])
    else:
        from .demo import main as demo_main

        demo_main(rest + argv[1:])


if __name__ == "__main__":
    main()
