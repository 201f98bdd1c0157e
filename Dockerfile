# AutoInit as a service: the API, the page and TensorFlow workers in one image.
#
#   docker build -t autoinit .
#   docker run --gpus all -p 8000:8000 -v autoinit-data:/data autoinit
#
# The default command serves the page and the API on port 8000 with an
# embedded worker (one per visible GPU, or one on the CPU). The same image
# runs `autoinit worker ...` for distributed mode (see compose.yaml and
# docs/DEPLOYMENT.md). TensorFlow's CUDA libraries come from pip
# (`tensorflow[and-cuda]`, the project's `gpu` extra); the host needs only the
# NVIDIA driver and the NVIDIA Container Toolkit.

# --------------------------------------------------------------------------- #
# builder: a virtual environment with the project, its `service` and `gpu` extras
# --------------------------------------------------------------------------- #
FROM python:3.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first (the large layer), from pyproject.toml (the library, the
# `service` and `gpu` extras, and the extras they name, such as `autoinit[hub]`
# for keras_hub) pinned by constraints.txt (scripts/lock), so that a change to
# the sources does not download TensorFlow and CUDA again.
COPY pyproject.toml README.md constraints.txt ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; x = p['optional-dependencies']; e = lambda n: [s for r in x[n] for s in ([t for m in r[9:-1].split(',') for t in e(m)] if r.startswith('autoinit[') else [r])]; print(*p['dependencies'], *e('service'), *e('gpu'), sep=chr(10))" > /tmp/requirements.txt \
    && pip install --no-cache-dir -c constraints.txt -r /tmp/requirements.txt

# Optional extra packages, e.g. --build-arg EXTRA_PACKAGES="fsspec s3fs" for
# an s3:// artifact store shared by API and workers on several hosts.
ARG EXTRA_PACKAGES=""
# hadolint ignore=DL3013
RUN if [ -n "$EXTRA_PACKAGES" ]; then pip install --no-cache-dir $EXTRA_PACKAGES; fi

COPY autoinit/ autoinit/
COPY server/ server/
RUN pip install --no-cache-dir --no-deps . \
    && autoinit --help > /dev/null

# --------------------------------------------------------------------------- #
# runtime: the venv, the page, a non-root user
# --------------------------------------------------------------------------- #
FROM python:3.11-slim-bookworm AS runtime

# With `--gpus`, the NVIDIA Container Toolkit mounts the driver's CUDA library
# (compute) and nvidia-smi (utility), which `autoinit serve` uses to start one
# worker per GPU. One OpenBLAS thread per process: `autoinit worker` imports
# NumPy before it could set it (`autoinit serve` sets it for its own workers).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    OPENBLAS_NUM_THREADS=1 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    AUTOINIT_DATA_DIR=/data \
    AUTOINIT_FRONTEND_DIR=/app/frontend

COPY --from=builder /opt/venv /opt/venv

# Register the pip-installed CUDA libraries (site-packages/nvidia/*/lib) with
# the dynamic linker, and create the user and the folders it writes.
RUN find /opt/venv/lib/python3.11/site-packages/nvidia -mindepth 2 -maxdepth 2 -type d -name lib \
        > /etc/ld.so.conf.d/autoinit-nvidia.conf \
    && test -s /etc/ld.so.conf.d/autoinit-nvidia.conf \
    && ldconfig \
    && groupadd --gid 10001 autoinit \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin autoinit \
    && mkdir -p /data /artifacts \
    && chown 10001:10001 /data /artifacts

WORKDIR /app
# The page, served at / (AUTOINIT_FRONTEND_DIR above).
COPY frontend/ /app/frontend/

USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

CMD ["autoinit", "serve", "--host", "0.0.0.0", "--port", "8000"]
