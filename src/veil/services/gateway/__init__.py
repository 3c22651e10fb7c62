"""The gateway: one public entry that routes HTTP and WebSocket traffic to running apps."""
