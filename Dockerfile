# easel-mcp as a streamable-HTTP service. docs/install.md says how to run it.
#
#   docker build -t easel-mcp .
#   docker run -d -p 8000:8000 -v easel-data:/data \
#     -e EASEL_AUTH_TOKEN=… -e REPLICATE_API_TOKEN=… -e EASEL_PUBLIC_URL=http://localhost:8000 easel-mcp
#
# The server listens on 0.0.0.0 inside the container, so it refuses to start without
# EASEL_AUTH_TOKEN (clients send "Authorization: Bearer <token>" to /mcp).

# --- build: the same wheel `python -m build` makes, with the OSS extra's wheels beside it ---
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY server ./server
COPY providers ./providers
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[oss]"

# --- run: no compiler, no source tree, not root ---
FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /home/easel --create-home easel \
 && mkdir -p /data \
 && chown easel:easel /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "easel-mcp[oss]" \
 && rm -rf /wheels
USER easel
# Images (and, with EASEL_STORAGE=oss, the copies kept while OSS is unreachable) live on the volume.
ENV EASEL_STORAGE_DIR=/data/images \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
VOLUME ["/data"]
EXPOSE 8000
# /healthz needs no token. urllib: the slim image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["easel-mcp"]
CMD ["--transport", "http", "--host", "0.0.0.0", "--port", "8000"]
