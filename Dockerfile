# fer-xai: the study in a container. Build: docker build -t fer-xai .
# Run the pipeline on the embedded default with the project mounted:
#   docker run --rm -v "$PWD":/home/fer/project fer-xai
# Stage 1 builds wheels; stage 2 is a slim runtime with a non-root user.
# TensorFlow with CUDA instead of the CPU build (needs the NVIDIA container toolkit to run):
#   docker build --build-arg TF=gpu -t fer-xai:gpu . && docker run --rm --gpus all -v "$PWD":/home/fer/project fer-xai:gpu

FROM python:3.11.10-slim-bookworm AS build
# cpu | gpu: the pyproject extra that brings TensorFlow (see the Makefile's TF)
ARG TF=cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --upgrade pip==25.3 setuptools==80.9.0 wheel==0.45.1 \
    && /opt/venv/bin/pip install ".[${TF}]"

FROM python:3.11.10-slim-bookworm AS runtime
# git: DVC needs it to read the pipeline in a git checkout; libgomp1: TensorFlow/OpenCV threads.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git libgomp1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PYTHONUNBUFFERED=1
RUN useradd --create-home --uid 10001 --user-group fer
WORKDIR /home/fer/project
COPY --chown=fer:fer dvc.yaml params.yaml MLproject python_env.yaml ./
COPY --chown=fer:fer .dvc/config .dvc/.gitignore ./.dvc/
COPY --chown=fer:fer src ./src
USER 10001:10001
# Without a mounted git checkout, DVC runs in no-SCM mode.
RUN git config --global --add safe.directory /home/fer/project \
    && dvc config --local core.no_scm true
CMD ["dvc", "repro"]
