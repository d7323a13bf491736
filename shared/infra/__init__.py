"""Throwaway Kafka and PostgreSQL servers for development and tests.

These launchers run real servers as local processes (no Docker), see
shared/KAFKA_LOCAL.md and shared/POSTGRES_LOCAL.md for the background.
"""
