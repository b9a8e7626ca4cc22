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

# -- ffmpeg-copy: Debian's own ffmpeg source (the version the runtime installs), built with only
#    what a copy-mode camera's recording pipeline runs (deploy/ffmpeg-copy.sh): it links 13 small
#    libraries instead of 214, so each copy-mode camera's ffmpeg holds about 3.6 MB of private
#    memory instead of 12.5 (docs/scaling.md) --
FROM debian:bookworm-slim AS ffmpeg-copy
WORKDIR /src
COPY deploy/ffmpeg-copy.sh /src/
RUN sed -i 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources \
    && apt-get update \
    && apt-get install -y --no-install-recommends dpkg-dev=1.21.* gcc=4:12.* libc6-dev=2.36-* make=4.3-* \
        libgnutls28-dev=3.7.* zlib1g-dev=1:1.2.* xz-utils=5.4.* pkg-config=1.8.* \
    && apt-get source --only-source ffmpeg \
    && mkdir /out \
    && sh /src/ffmpeg-copy.sh /src/ffmpeg-5.1.* /out/ffmpeg-copy \
    && rm -rf /var/lib/apt/lists/*

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
COPY --from=ffmpeg-copy /out/ffmpeg-copy /usr/local/lib/hksv/ffmpeg-copy
# Copy-mode cameras' recording pipelines run the ffmpeg built for copying; `copy_ffmpeg: ffmpeg` in
# the configuration file runs Debian's for them too (for an input the copy build does not read).
ENV PATH=/opt/hksv/bin:$PATH \
    HKSV_COPY_FFMPEG=/usr/local/lib/hksv/ffmpeg-copy \
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
