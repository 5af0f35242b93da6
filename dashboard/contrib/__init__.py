"""Integrations with other Django packages; each module imports its package itself."""
