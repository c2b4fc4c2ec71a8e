"""The officer console (web UI) served by the collector."""
