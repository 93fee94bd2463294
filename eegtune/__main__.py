"""``python -m eegtune``."""

from eegtune.cli.app import main

main()
