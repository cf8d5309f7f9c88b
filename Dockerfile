# The loadgen image the Kubernetes manifests run (k8s/components/image names it). Build from the repository root:
#   docker build -t REPO/milvus-loadgen:TAG . && docker push REPO/milvus-loadgen:TAG
#   loadgen k8s apply --image REPO/milvus-loadgen:TAG
# Base pinned to an exact patch release; pin its digest too when you mirror it (`@sha256:...`) for bit-for-bit builds.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# the same pins as `make setup`: constraints.txt is the lock of the whole dependency set
COPY pyproject.toml constraints.txt README.md ./
COPY loadgen ./loadgen
COPY locustfiles ./locustfiles
RUN python -m pip install --constraint constraints.txt . \
    && useradd --uid 10001 --user-group --no-create-home --home-dir /tmp --shell /usr/sbin/nologin loadgen

# non-root; the pods also run with runAsUser 10001 and a read-only root filesystem (HOME and caches in /tmp)
USER 10001:10001
ENV HOME=/tmp \
    LOCUST_SKIP_MONKEY_PATCH=1
EXPOSE 8089 5557
# the manifests set the command: `python -m locust -f <locustfile> --master|--worker ...` (see k8s/locust)
CMD ["loadgen", "--help"]
