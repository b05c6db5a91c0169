"""Shared plumbing every service imports: settings base, the error root, Kafka helpers, the local
broker launcher and topic configs. It imports no service: ingest, processors and api depend on it,
and the composition in ``arbstream/`` (CLI, bench, supervision, soak, backtest) sits on top."""

__version__ = "0.1.0"
