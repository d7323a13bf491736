"""Throwaway Kafka, PostgreSQL and S3 servers for development and tests.

These launchers run real servers as local processes (no Docker), see
shared/KAFKA_LOCAL.md and shared/POSTGRES_LOCAL.md for the background; the S3
server is versitygw, built once with Go (shared/infra/s3.py).
"""
