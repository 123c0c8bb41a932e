# reliq: gateway and workers in one image (the command picks the role).
#   docker build -t reliq .
#   docker run reliq                                    # the gateway: it does not import the workers' code
#   docker run reliq reliq worker examples.shop:app    # a worker (the image ships the examples)
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY reliq ./reliq
COPY gateway ./gateway
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[gateway]'

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 reliq
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /app
COPY examples ./examples
USER reliq
ENV RELIQ_REDIS_URL=redis://valkey:6379/0 PYTHONUNBUFFERED=1
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz'); sys.exit(0)" || exit 1
# the gateway learns handlers and their input schemas from the registry the workers publish
CMD ["reliq", "gateway", "--host", "0.0.0.0", "--port", "8000"]
