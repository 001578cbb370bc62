"""cortex: serve a plain Python predictor as an HTTP API, locally or on Kubernetes.

The packages form layers; imports only go down (import-linter checks it in CI)::

    cli          operator          runtime      the three programs: `cortex`, the kopf
     |    \\         |                 |         operator, `python -m cortex.runtime`
     |     \\        |                 |         (the runtime never imports k8s: the
     |      '----> k8s                |         serving image stays small)
     |              |                 |
     '-----------> spec <-------------'         pure: pydantic models, YAML loading
                    |
             errors | contracts                 pure: the error tree; the names that two
                    ^                           processes or packages must agree on
                    |
                  unpack                        `python -m cortex.unpack`: the pod's init
                                                step, project archive -> folder (stdlib only)

``spec`` and ``k8s`` do no I/O and import no server or cluster client. Inside each package the
modules form a column too (one import-linter ``layers`` contract per package).
"""
