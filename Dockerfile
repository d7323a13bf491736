# One image for all six services; compose picks the command per service
# (`python -m services.<name>`, `python -m deploy.topics` for topic-init).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: wheels into a virtualenv ------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, from pyproject.toml alone: this layer is rebuilt only
# when the dependency list changes, not on every code edit.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && pip install --upgrade pip \
 && pip install -r requirements.txt

# Then the code, without re-resolving dependencies.
COPY pyproject.toml README.md* ./
COPY shared ./shared
COPY services ./services
RUN pip install --no-deps . \
 && python -m compileall -q /opt/venv/lib

# --- runtime: the venv, the deploy jobs, a non-root user ------------------------
FROM ${PYTHON_IMAGE} AS runtime
# libgomp: the OpenMP runtime XGBoost's wheel expects from the system.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 fluxo \
 && useradd --system --uid 10001 --gid fluxo --home-dir /app --shell /usr/sbin/nologin fluxo \
 && mkdir -p /data/artifacts /data/lake \
 && chown fluxo:fluxo /data/artifacts /data/lake
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY deploy/__init__.py deploy/topics.py ./deploy/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ARTIFACT_DIR=/data/artifacts \
    METRICS_HOST=0.0.0.0
# A named volume mounted here starts with this directory's owner: fluxo.
VOLUME ["/data/artifacts"]
USER fluxo
EXPOSE 8000 9100
CMD ["python", "-m", "services.gateway"]
