"""``python -m marquee`` runs the CLI."""

from marquee.cli import main

main()
