"""``python -m capacity``."""

from .cli import main

main()
