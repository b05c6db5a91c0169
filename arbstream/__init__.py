"""arbstream: real-time cross-exchange arbitrage tracking for crypto perpetual futures."""

__version__ = "0.1.0"
