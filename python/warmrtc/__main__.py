"""``python -m warmrtc ...``: the ``warmrtc`` command (see :mod:`warmrtc.cli`)."""

from .cli import main

main()
