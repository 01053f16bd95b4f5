"""The ``broker`` command line (Typer). Each area has its own module."""
