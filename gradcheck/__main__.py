"""``python -m gradcheck``: the same command line as the ``gradcheck`` script."""

from gradcheck.cli import main

raise SystemExit(main())
