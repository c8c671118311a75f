# syntax=docker/dockerfile:1
# Build stage: wheels for everything in requirements.txt (and, with --build-arg TELEMETRY=1, the
# optional OpenTelemetry extra of requirements-telemetry.txt; tracing stays off until
# [telemetry] enabled = true).
FROM python:3.13-slim AS build
ARG TELEMETRY=0
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /build
COPY requirements.txt requirements-telemetry.txt ./
RUN pip wheel --wheel-dir /wheels -r requirements.txt \
    && if [ "$TELEMETRY" = "1" ]; then pip wheel --wheel-dir /wheels -r requirements-telemetry.txt; fi

# Runtime stage: no compilers, a non-root user, gunicorn.
FROM python:3.13-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=stateset.settings STATESET_ENV=production \
    PROMETHEUS_MULTIPROC_DIR=/tmp/metrics
RUN useradd --create-home --uid 10001 stateset
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links=/wheels /wheels/* && rm -rf /wheels \
    && install -d -o stateset -g stateset /tmp/metrics
WORKDIR /app
COPY --chown=stateset:stateset . .
# Static files (admin, Swagger UI from the sidecar) are collected at build time; SECRET_KEY and
# DATABASE_URL here are placeholders that only satisfy the settings loader.
RUN STATESET_ENV=build SECRET_KEY=build DATABASE_URL=postgres://build/build python manage.py collectstatic --no-input -v 0
USER stateset
# 8000: the API (gunicorn). 9100: a Celery worker's metrics ([celery] metrics_port), when set.
EXPOSE 8000 9100
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health').status != 200)"
CMD ["gunicorn", "-c", "gunicorn.conf.py", "stateset.wsgi:application"]
