"""Fluxo's common library: stream declarations, event contracts, Kafka and
PostgreSQL plumbing, settings, metrics and logging shared by every service."""
