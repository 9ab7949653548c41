"""Logs, metrics, traces and readiness: adapters the composition root wires around the application from outside."""
