"""python -m engine.cli: the cbrq command."""

from engine.cli import main

main()
