"""`python -m gptlint`."""

from gptlint.cli import main

raise SystemExit(main())
