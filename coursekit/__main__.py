"""``python -m coursekit`` runs the ``coursekit`` command (see :mod:`coursekit.cli`)."""

from coursekit.cli import main

raise SystemExit(main())
