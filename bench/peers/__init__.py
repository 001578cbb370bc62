"""The peers' trivial servers, each run from its own env (bench/envs.py): the same work as
bench/servers/ (read the JSON body, answer a small JSON dict) in each framework's own idiom and
recommended production launch. Only the standard library is imported here: this package is
imported inside every peer's env. The catalogue of every server under test is bench/peers/cases.py.
"""
