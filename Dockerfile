# One Puente worker: `python -m bot serve --webhook` on WEBHOOK_LISTEN (0.0.0.0:8080 here), settings from the
# environment (compose.yaml passes .env). /healthz is served on the webhook port.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WEBHOOK_LISTEN=0.0.0.0:8080

WORKDIR /app
# The pinned dependencies first, in a layer of their own: a code change does not reinstall them.
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY flows ./flows
COPY locales ./locales
COPY directory ./directory
# Editable: bot/i18n.py and flows/ find locales/ and flows/programs/ beside the code, which stays in /app.
RUN pip install --no-deps -e . \
    && useradd --system --uid 10001 --home-dir /app --no-create-home puente \
    && mkdir -p /app/data && chown puente /app/data
USER puente

EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('WEBHOOK_LISTEN', ':8080').rpartition(':')[2]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2)"]
CMD ["python", "-m", "bot", "serve", "--webhook"]
