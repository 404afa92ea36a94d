"""Reporting on the host: figures and sweep reports."""
