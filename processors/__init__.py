"""Faust stream processors: latest-price tables and arbitrage detection."""
