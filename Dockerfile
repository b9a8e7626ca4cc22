# hksv-sidecar: HomeKit Secure Video for any IP camera (docs/docker.md).
# Runs with host networking (mDNS, HAP and HomeKit Data Stream ports); see compose.yaml.

# -- build: a virtualenv with the package and its dependencies (all have wheels: no compiler) --
FROM debian:bookworm-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3=3.11.* python3-venv=3.11.* ca-certificates=202* \
    && rm -rf /var/lib/apt/lists/*
# The dependencies at the versions and file hashes requirements.lock pins, then the package alone.
COPY requirements.lock /src/
RUN python3 -m venv /opt/hksv \
    && /opt/hksv/bin/pip install --no-cache-dir --disable-pip-version-check --require-hashes -r /src/requirements.lock
COPY pyproject.toml setup.py README.md /src/
COPY sidecar /src/sidecar
COPY ffmpeg_profiles /src/ffmpeg_profiles
RUN /opt/hksv/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps /src \
    && /opt/hksv/bin/pip uninstall --yes --disable-pip-version-check pip setuptools \
    && find /opt/hksv -name __pycache__ -prune -exec rm -rf {} +

# -- runtime: Debian's Python and ffmpeg (libx264 and the native AAC encoder HKSV needs; VAAPI/QSV
#    drivers for the hardware profiles come with --device /dev/dri) --
# ffmpeg's libraries depend on libGL, which brings Mesa's OpenGL drivers and the LLVM and Z3 they
# load (about 160 MB); ffmpeg never opens OpenGL, so dpkg leaves those files out (docs/docker.md).
FROM debian:bookworm-slim
RUN printf '%s\n' 'path-exclude /usr/lib/*/dri/*_dri.so' 'path-exclude /usr/lib/*/libLLVM-*' \
        'path-exclude /usr/lib/*/libz3.so*' > /etc/dpkg/dpkg.cfg.d/hksv-no-opengl \
    && apt-get update \
    && apt-get install -y --no-install-recommends python3=3.11.* ffmpeg=7:5.1.* ca-certificates=202* tini=0.19.* \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home --shell /usr/sbin/nologin hksv \
    && mkdir -p /config /data \
    && chown hksv:hksv /data
COPY --from=build /opt/hksv /opt/hksv
ENV PATH=/opt/hksv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HKSV_HTTP_PORT=8099
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# /healthz answers 200 while every camera's pipeline is healthy (the status page is on the same port).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['HKSV_HTTP_PORT'], timeout=4)"]
# tini reaps ffmpeg children and forwards SIGTERM; the state lives in /data, the config in /config.
ENTRYPOINT ["tini", "--", "/bin/sh", "-c", "exec hksv-sidecar --state-dir /data --http-port \"$HKSV_HTTP_PORT\" \"$@\"", "hksv-sidecar"]
CMD ["--config", "/config/config.yaml"]
