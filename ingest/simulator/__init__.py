"""Offline exchange simulator: local WebSocket/REST endpoints speaking each venue's protocol."""
