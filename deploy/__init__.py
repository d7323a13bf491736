"""Running Fluxo: the topic-init job, the local (no Docker) stack, Prometheus and Grafana files."""
