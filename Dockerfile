FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY stencil ./stencil
COPY worker ./worker
COPY scheduler ./scheduler
COPY models ./models
COPY migrations ./migrations
RUN pip install --no-cache-dir .
COPY manifests ./manifests
ENV NO_GCE_CHECK=true
ENTRYPOINT ["stencil"]
