"""The durable call store (SQLite or PostgreSQL)."""
