"""The sections of ``python -m bench``.

Each module has ``run(settings) -> dict`` (its part of the results file) and
``report(section, charts) -> str`` (its README markdown; it writes its PNGs into ``charts``).
"""
