"""veil cloud: confidential docker-compose apps on attested workers (the demand side)."""
