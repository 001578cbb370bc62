"""Tests of cortex.spec: models, rules, units, loading and messages."""
