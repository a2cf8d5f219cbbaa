# One image for every part of the engine (worker, gateway, simulator): `rtic <part>`.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY rtic rtic
COPY streams streams
COPY enrichers enrichers
COPY rules rules
COPY cases cases
COPY records records
COPY analytics analytics
COPY push push
COPY dashboards dashboards
COPY simulators simulators
COPY cli cli
COPY data data
RUN pip install --no-cache-dir .
ENV RTIC_DATA_DIR=/app/data
RUN mkdir -p /var/lib/rtic/evidence && chown nobody /var/lib/rtic/evidence
USER nobody
ENTRYPOINT ["rtic"]
