# The Dagster code location: a gRPC server for ml_assets.definitions. Dagster's Helm chart runs it
# as a user-code deployment, and K8sRunLauncher runs every run in a pod of this same image.
# Build from the repository root:  docker build -f deploy/docker/code-location.Dockerfile .
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    ML_ASSETS_HOME=/opt/ml_assets MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false
WORKDIR /opt/ml_assets
# The same exact versions as every other install of the project.
COPY pyproject.toml constraints.txt README.md ./
COPY ml_assets ./ml_assets
# The code location's own package (yours in place of the example); -e keeps its pyproject.toml beside its
# defs/ folder, where dg.load_from_defs_folder looks.
COPY examples/ml_examples ./examples/ml_examples
RUN pip install -c constraints.txt '.[postgres]' -e ./examples/ml_examples \
    && useradd --uid 10001 --no-create-home --home-dir /opt/ml_assets app
COPY deploy ./deploy
USER 10001
EXPOSE 3030
HEALTHCHECK --interval=20s --timeout=5s CMD ["dagster", "api", "grpc-health-check", "-p", "3030"]
CMD ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", "3030", "-m", "ml_examples.definitions"]
