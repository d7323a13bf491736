"""Fluxo services: one package per process, run as ``python -m services.<name>``."""
