# The scoring service: `ml-assets serve` for one problem's champion. Host, port, problem and the
# MLflow registry come from the environment (set them in the pod spec, secrets from a Secret).
# Build from the repository root:  docker build -f deploy/docker/service.Dockerfile .
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    ML_ASSETS_HOME=/opt/ml_assets MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false \
    ML_ASSETS_SERVE_HOST=0.0.0.0 ML_ASSETS_SERVE_PORT=8000 ML_ASSETS_PROBLEM=churn
WORKDIR /opt/ml_assets
COPY pyproject.toml constraints.txt README.md ./
COPY ml_assets ./ml_assets
# The problem's own package: the service imports the problem by the reference its model versions record.
COPY examples/ml_examples ./examples/ml_examples
RUN pip install -c constraints.txt . ./examples/ml_examples \
    && useradd --uid 10001 --no-create-home --home-dir /opt/ml_assets app \
    && mkdir -p /opt/ml_assets/data && chown 10001 /opt/ml_assets/data
USER 10001
EXPOSE 8000
# 200 while a champion is loaded, 503 before: the container is healthy only when it can answer.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s CMD ["ml-assets", "healthcheck"]
CMD ["ml-assets", "serve"]
