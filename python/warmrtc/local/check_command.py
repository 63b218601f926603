"""``warmrtc check``: the connectivity check from the command line, against the real service or,
without a key, an embedded local service on a local stack it starts itself."""

from __future__ import annotations

import argparse
import os
import sys

from .._protocol.endpoints import API_KEY_ENV
from .._protocol.models import DEFAULT_MODEL
from ..check import check_blocking
from . import stack
from .service import LocalService


def main(argv: list[str] | None = None) -> None:
    """``warmrtc check``: exit code 0 when every step passed, 1 otherwise."""
    p = argparse.ArgumentParser(
        prog="warmrtc check",
        description="Checks the way to the realtime service, step by step: the real service "
        "with DECART_API_KEY (or --base-url), else an embedded local service on the local stack.",
    )
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--base-url", help="the service's address (default: the public endpoint)")
    p.add_argument("--timeout", type=float, default=30, help="seconds for steps 1-5")
    p.add_argument("--frames-timeout", type=float, default=15, help="seconds for the round trip")
    argv = sys.argv[1:] if argv is None else argv
    args = p.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    api_key = os.environ.get(API_KEY_ENV)
    options = {"timeout": args.timeout, "frames_timeout": args.frames_timeout}
    try:
        if api_key or args.base_url:
            where = args.base_url or "the realtime service"
            print(f"warmrtc check: {args.model} at {where}")
            report = check_blocking(args.model, api_key=api_key, base_url=args.base_url, **options)
        elif not os.environ.get("WARMRTC_LIVEKIT_URL"):
            # Not inside a local stack: start one (no root needed) and check again inside it.
            try:
                sys.exit(
                    stack.run([sys.executable, "-m", "warmrtc", "check", *argv], quiet_encoder=True)
                )
            except stack.StackError as e:
                raise SystemExit(f"warmrtc check: {e}") from None
        else:
            with LocalService() as (base_url, local_key):
                print(f"warmrtc check: {args.model} at the local service {base_url}")
                report = check_blocking(args.model, api_key=local_key, base_url=base_url, **options)
    except (ValueError, TypeError, RuntimeError) as e:
        print(f"warmrtc check: {e}", file=sys.stderr)
        sys.exit(1)
    print(report)
    sys.exit(0 if report.ok else 1)
