# Dockerfile — anvil in two stages: build with Debian 12's toolchain, run on bookworm-slim
# as an unprivileged user with the database on a volume. Dev mode by default (loopback,
# any token): run with --network host, or publish the port with ANVIL_HOST=0.0.0.0 and
# ANVIL_TOKENS set (anvil refuses a non-loopback address without tokens). Settings come
# from ANVIL_* variables; to use a config file, mount it and set ANVIL_CONFIG.
FROM debian:bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev meson ninja-build pkg-config \
      libmicrohttpd-dev libjansson-dev libsqlite3-dev libcurl4-openssl-dev libssl-dev libpq-dev \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY meson.build meson_options.txt ./
COPY conf conf
COPY engine engine
COPY storage storage
COPY api api
COPY server server
COPY ctl ctl
COPY scripts/embed.py scripts/embed.py
RUN meson setup build --buildtype=release -Dtests=false >/dev/null \
 && ninja -C build \
 && strip build/anvil

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmicrohttpd12 libjansson4 libsqlite3-0 libcurl4 libssl3 libpq5 curl \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/anvil --create-home anvil
COPY --from=build /src/build/anvil /usr/local/bin/anvil
ENV ANVIL_HOST=127.0.0.1 \
    ANVIL_PORT=8080 \
    ANVIL_DATA_DIR=/var/lib/anvil \
    ANVIL_DURABILITY=fsync
USER anvil
VOLUME /var/lib/anvil
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${ANVIL_PORT}/health" >/dev/null || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["anvil"]
