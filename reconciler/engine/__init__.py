"""Running plans: the durable store (SQLite) and the asyncio executor of step DAGs."""
