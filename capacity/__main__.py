"""``python -m capacity``."""

from capacity.cli.entry import main

main()
