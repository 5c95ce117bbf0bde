"""``python -m jam``: the same as the ``jam`` console script."""

from jam.cli import main

raise SystemExit(main())
