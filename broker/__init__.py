"""Inter-agency information sharing broker."""

__version__ = "0.1.0"
