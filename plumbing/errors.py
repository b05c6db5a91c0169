"""One error root for the whole product, split into retryable and not.

Callers that loop (the venue runner, the producer, the broker manager) retry
``RetryableError`` with backoff and surface ``FatalError`` to the operator.
"""

from __future__ import annotations


class ArbstreamError(Exception):
    """Root of every error arbstream raises on purpose."""


class RetryableError(ArbstreamError):
    """Transient: the same action may succeed later (network, broker not ready, venue hiccup)."""


class FatalError(ArbstreamError):
    """Permanent until someone changes configuration or code; retrying will not help."""


class ConfigError(FatalError):
    """Bad settings or bad configuration input (for example a symbol-file line)."""


class BrokerError(ArbstreamError):
    """Base for local-broker management failures."""


class BrokerStartError(BrokerError, FatalError):
    """The local broker could not be started (port taken, JVM missing, crashed at start)."""


class BrokerNotReadyError(BrokerError, RetryableError):
    """The broker did not accept produce/consume in time."""
