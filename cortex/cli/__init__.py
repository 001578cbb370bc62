"""The ``cortex`` command line; the entry point is ``cortex.cli.main:main``."""
