"""python -m engine: the cbrq command."""

from engine.cli import main

main()
