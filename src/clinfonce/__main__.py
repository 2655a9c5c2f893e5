"""``python -m clinfonce``: the command-line tool (Lightning's DDP launcher re-runs it so)."""

from clinfonce.cli import main

raise SystemExit(main())
