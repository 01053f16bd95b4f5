"""``python -m broker``."""

from broker.cli.main import main

main()
