# One image, one command per service (see docker-compose.yml). TensorFlow's GPU build comes with
# the [gpu] extra (CUDA libraries from pip), so the host only needs the NVIDIA driver and toolkit.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 TF_CPP_MIN_LOG_LEVEL=2 \
    DOGBREED_VAR_DIR=/data DOGBREED_STORAGE_DIR=/data/images DOGBREED_MODEL_DIR=/data/models \
    KERAS_HOME=/data/keras
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY web ./web
COPY ml ./ml
COPY worker ./worker
COPY training ./training
COPY cli ./cli
COPY migrations ./migrations
RUN pip install ".[gpu]" && useradd --create-home --uid 1000 dogbreed && mkdir -p /data && chown dogbreed /data
USER dogbreed
VOLUME ["/data"]
EXPOSE 8000 5555
CMD ["dogbreed", "web"]
