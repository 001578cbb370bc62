"""Tests of cortex, mirroring the package layout."""
