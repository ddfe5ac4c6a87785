# CLM production image: one image for web (gunicorn), worker and beat (celery); see docs/DEPLOY.md.
# Nothing secret is baked in: SECRET_KEY, DATABASE_URL, REDIS_URL, ALLOWED_HOSTS come from the
# environment at run time (docker-compose.yml).

# --- Stage 1: pick the files the image needs out of the build context ---------------------------
# An allow-list, so a developer's .venv, data/ (SQLite file, broker queue), .git, .env files and
# static/vendor never reach the final image, even without a .dockerignore. Missing entries (README.md,
# locale/) are skipped, so adding them later needs no change here.
FROM python:3.11-slim AS source
COPY . /context
RUN set -eu; mkdir /out; cd /context; \
    for entry in pyproject.toml README.md manage.py package.json package-lock.json \
                 clm lifecycle campaigns metrics templates static locale; do \
        if [ -e "$entry" ]; then cp -a "$entry" /out/; fi; \
    done; \
    rm -rf /out/static/vendor; \
    find /out -name __pycache__ -type d -prune -exec rm -rf {} +; \
    find /out -name '*.pyc' -delete

# --- Stage 2: the runtime image -----------------------------------------------------------------
FROM python:3.11-slim

# settings.py finds templates/, static/ and locale/ next to the package (BASE_DIR), so the code runs
# from /app (PYTHONPATH comes before site-packages), not from the copy `pip install .` puts into
# site-packages, which holds only the .py files.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    DJANGO_SETTINGS_MODULE=clm.settings \
    CLM_DATA_DIR=/app/data

WORKDIR /app

RUN groupadd --system --gid 10001 clm \
    && useradd --system --uid 10001 --gid clm --home-dir /home/clm --create-home --shell /usr/sbin/nologin clm

# Dependencies first (only pyproject.toml), so a code change does not reinstall them.
# lifetimes only carries the CDNOW files; --no-deps keeps its old numerical dependencies out.
COPY --from=source /out/pyproject.toml /app/pyproject.toml
RUN pip install . \
    && pip install --no-deps "lifetimes==0.11.3"

COPY --from=source /out/ /app/
RUN pip install --no-deps . \
    && rm -rf /app/build /app/*.egg-info

# Pinned JS libraries from the npm registry into static/vendor/, then everything into STATIC_ROOT
# (/app/staticfiles) for WhiteNoise. The SECRET_KEY and CLM_ENCRYPTION_KEYS here exist only for this step
# (settings refuse to load without them when DEBUG=0); it is not an ENV, so it is not in the image's configuration.
RUN python -m clm.assets \
    && DEBUG=0 SECRET_KEY=build-only-collectstatic-not-a-secret \
       CLM_ENCRYPTION_KEYS=YnVpbGQtb25seS1jb2xsZWN0c3RhdGljLW5vdC1hLWs= CLM_DATA_DIR=/tmp/clm-build \
       python manage.py collectstatic --noinput \
    && rm -rf /tmp/clm-build \
    && mkdir -p /app/data/uploads \
    && chown -R clm:clm /app/data

USER clm

EXPOSE 8000

# The default command serves the web app; docker-compose.yml sets the command of each service.
# --no-control-socket: gunicorn 27 otherwise opens a control socket under ~/.gunicorn.
CMD ["gunicorn", "clm.wsgi:application", "--bind", "0.0.0.0:8000", "--no-control-socket", \
     "--access-logfile", "-", "--worker-tmp-dir", "/dev/shm"]
