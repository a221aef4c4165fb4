"""``python -m ctxtax``: the command line."""

from ctxtax._cli import main

raise SystemExit(main())
