# One image for every Stencil process: worker, scheduler, migrations and the CLI.
FROM python:3.11-slim
# Tesseract for the expect_text check (run by the scheduler); nothing else from Debian.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tesseract-ocr \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY stencil ./stencil
COPY worker ./worker
COPY scheduler ./scheduler
COPY models ./models
COPY migrations ./migrations
COPY api ./api
RUN pip install --no-cache-dir . \
 && groupadd --system --gid 10001 stencil \
 && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/stencil stencil \
 && mkdir -p /data \
 && chown stencil:stencil /data
COPY manifests ./manifests
# The embedded default's files (if no database, broker or storage URL is set) go to /data.
ENV NO_GCE_CHECK=true STENCIL_DATA_DIR=/data
# Not root: numeric, so an orchestrator can verify it (runAsNonRoot).
USER 10001:10001
# Settings valid, database reachable and migrated, broker reachable (no storage probe, no paid call).
HEALTHCHECK --interval=30s --timeout=20s --start-period=30s --retries=3 \
  CMD ["stencil", "doctor", "--quick"]
ENTRYPOINT ["stencil"]
