"""Allow `python -m lab` as well as the `lab` console script."""

from lab.cli import main

raise SystemExit(main())
