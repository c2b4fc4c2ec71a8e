"""Policies: secrecy-level handling and the 八不 rules as signed, testable policy packs.

Entry points: `policies.engine.load_policy` and `violations_for_scan_record` (see that module's
docstring); the CLI lives in `policies.cli`. Nothing is imported here so that `baomi scan` stays light.
"""
