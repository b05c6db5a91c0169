"""arbstream: real-time cross-exchange arbitrage tracking for crypto perpetual futures.

This package is the composition on top (CLI, bench, service supervision, soak, backtest); the
plumbing every service imports lives in ``plumbing``."""

from plumbing import __version__

__all__ = ["__version__"]
