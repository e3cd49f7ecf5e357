"""``python -m gradcheck``: the same command line as the ``gradcheck`` script."""

from gradcheck.ways_in.cli import main

raise SystemExit(main())
