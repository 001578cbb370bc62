# An API's image with its dependencies installed at build time: the fast path, next to
# predictor.dependencies installing them at every pod start. Build it in the project folder
# (the folder of cortex.yaml), once per variant:
#   docker build --build-arg VARIANT=cpu -t registry.example.com/team/text-embedder:1 .
#   docker build --build-arg VARIANT=cu121 -t registry.example.com/team/text-embedder:1-cuda .
ARG RUNTIME=cortex-serving/runtime:0.1.0
FROM ${RUNTIME}

# cpu, or the CUDA tag of a PyTorch wheel index (cu118, cu121, cu124): PyTorch's CUDA wheels
# carry their CUDA libraries, so the node needs only its NVIDIA driver. Packages the index
# does not have come from PyPI.
ARG VARIANT=cpu

# The runtime image runs as user 1000: --user installs go to PYTHONUSERBASE, on the path.
COPY requirements.txt /tmp/requirements.txt
RUN pip install --user --no-cache-dir \
        --extra-index-url "https://download.pytorch.org/whl/${VARIANT}" \
        -r /tmp/requirements.txt

# The code, where the runtime looks when the API has no project ConfigMap.
COPY --chown=1000:1000 . /mnt/project
