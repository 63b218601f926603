"""The warmrtc command.

- ``warmrtc demo``: warm a session, go live, pause, resume, and print the timeline (on the
  local stack unless DECART_API_KEY is set);
- ``warmrtc check``: check the way to the service step by step (exit code 0: all passed);
- ``warmrtc stack -- CMD``: run CMD next to a local livekit-server, in a namespace of its own;
- ``warmrtc emulator``: the local realtime service (see ``warmrtc emulator --help``).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="warmrtc", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "command", choices=["demo", "check", "stack", "emulator"], help="what to run"
    )
    args = parser.parse_args(argv[:1])
    rest = argv[1:]
    if args.command == "emulator":
        from .emulator.__main__ import main as emulator_main

        emulator_main(rest)
    elif args.command == "check":
        from .local.check_command import main as check_main

        check_main(rest)
    elif args.command == "stack":
        from .local.stack import main as stack_main

        sys.exit(stack_main(rest))
    else:
        from .local.demo import main as demo_main

        demo_main(rest)


if __name__ == "__main__":
    main()
