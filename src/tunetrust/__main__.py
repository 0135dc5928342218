"""``python -m tunetrust`` runs the command line."""

from tunetrust.cli import main

main()
