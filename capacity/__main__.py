"""``python -m capacity``."""

from capacity.cli.app import main

main()
