"""``warmrtc check``: the connectivity check from the command line, against the real service or,
without a key, an embedded local service on a local stack it starts itself."""

from __future__ import annotations

import argparse
import os
import sys

from .._protocol.endpoints import API_KEY_ENV
from .._protocol.models import DEFAULT_MODEL
from ..check import check_blocking
from . import linkspec, stack
from .service import LocalService


def main(argv: list[str] | None = None) -> None:
    """``warmrtc check``: exit code 0 when every step passed, 1 otherwise."""
    p = argparse.ArgumentParser(
        prog="warmrtc check",
        description="Checks the way to the realtime service, step by step, each in round trips "
        "to it: the real service with DECART_API_KEY (or --base-url), else an embedded local "
        "service on the local stack (behind --link, if given).",
    )
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--base-url", help="the service's address (default: the public endpoint)")
    p.add_argument("--timeout", type=float, default=30, help="seconds for steps 1-5")
    p.add_argument("--frames-timeout", type=float, default=15, help="seconds for the round trip")
    linkspec.add_arguments(p)
    argv = sys.argv[1:] if argv is None else argv
    args, link = linkspec.parse_arguments(p, argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    api_key = os.environ.get(API_KEY_ENV)
    options = {"timeout": args.timeout, "frames_timeout": args.frames_timeout}
    remote = bool(api_key or args.base_url)
    if remote and link.shaped:
        p.error("--link shapes the local stack's link; the real service is reached as it is")
    if not remote and not os.environ.get("WARMRTC_LIVEKIT_URL"):
        stack.rerun_inside("check", argv, link)  # not inside a local stack yet: start one
    try:
        if remote:
            where = args.base_url or "the realtime service"
            print(f"warmrtc check: {args.model} at {where}")
            report = check_blocking(args.model, api_key=api_key, base_url=args.base_url, **options)
        else:
            stack.check_link("check", link)
            with LocalService() as (base_url, local_key):
                behind = f", behind a link: {link.describe()}" if link.shaped else ""
                print(f"warmrtc check: {args.model} at the local service {base_url}{behind}")
                report = check_blocking(args.model, api_key=local_key, base_url=base_url, **options)
    except (ValueError, TypeError, RuntimeError) as e:
        print(f"warmrtc check: {e}", file=sys.stderr)
        sys.exit(1)
    print(report)
    sys.exit(0 if report.ok else 1)
