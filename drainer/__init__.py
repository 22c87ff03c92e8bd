"""Drain Vitrage's vitrage_persistor notifications from RabbitMQ into `drainer_events`, and (opt-in)
into Vitrage's own alarm history."""

__version__ = "0.2.0"
