# One image for every part of the engine (worker, gateway, simulator): `rtic <part>`.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY rtic rtic
COPY streams streams
COPY enrichers enrichers
COPY rules rules
COPY analytics analytics
COPY push push
COPY dashboards dashboards
COPY simulators simulators
COPY data data
RUN pip install --no-cache-dir .
ENV RTIC_DATA_DIR=/app/data
USER nobody
ENTRYPOINT ["rtic"]
