"""Drain Vitrage's vitrage_persistor notifications from RabbitMQ into a relational `events` table."""

__version__ = "0.1.0"
