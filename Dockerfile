FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 CLEACK_VAR_DIR=/var/lib/cleack
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY web ./web
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
RUN pip install --no-cache-dir -e . \
    && useradd --system --home /var/lib/cleack --create-home cleack
USER cleack
EXPOSE 8000
CMD ["cleack", "serve"]
