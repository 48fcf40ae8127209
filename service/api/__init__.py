"""The HTTP face (aiohttp): dashboard, subscriptions and read API, metrics and health."""
