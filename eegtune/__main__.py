"""``python -m eegtune``."""

from eegtune.cli import main

main()
