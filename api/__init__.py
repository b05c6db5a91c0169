"""FastAPI service: REST over the processors' state, WebSocket relay, dashboard."""
