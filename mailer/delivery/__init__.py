"""Delivery: draining an issue's outbox through a provider."""
