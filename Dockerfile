# The cortex image: the serving runtime (default command) and the operator
# (`python -m cortex.operator`, see operator/deployment.yaml). Build from the repository root:
#   docker build -t cortex-serving/runtime:0.1.0 .
# A custom predictor image (predictor.image) builds FROM this one and copies its project folder
# to /mnt/project, where the runtime looks for it when no project ConfigMap is given.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A numeric user, so Kubernetes can check runAsNonRoot. The manifests set no runAsUser: pods run
# as this user, or as the UID the cluster assigns (OpenShift).
RUN groupadd --gid 1000 cortex \
    && useradd --uid 1000 --gid 1000 --no-log-init --create-home --shell /usr/sbin/nologin cortex

# Only what the package build needs (.dockerignore keeps the rest out of the context).
COPY pyproject.toml README.md /tmp/cortex-src/
COPY cortex /tmp/cortex-src/cortex
RUN pip install "/tmp/cortex-src[serve,operator]" && rm -rf /tmp/cortex-src

RUN mkdir -p /mnt/project && chown 1000:1000 /mnt/project
WORKDIR /mnt/project
USER 1000:1000
# Pods run with a read-only root and HOME on an emptyDir (cortex/k8s/deployment.py), so packages
# an image built FROM this one installs with `pip install --user` are looked up here, not in HOME.
ENV PYTHONUSERBASE=/home/cortex/.local

EXPOSE 8888
CMD ["python", "-m", "cortex.runtime", "--spec", "/mnt/project/cortex.yaml", "--port", "8888"]
