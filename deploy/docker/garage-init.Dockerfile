# The one-shot service of docker-compose.yml that gives a fresh Garage its layout, the
# application's access key and its bucket. Garage's own image has no shell, so its binary is
# copied next to bash here.
ARG GARAGE_VERSION=v2.5.0
FROM dxflrs/garage:${GARAGE_VERSION} AS garage

FROM debian:bookworm-slim
COPY --from=garage /garage /usr/local/bin/garage
COPY deploy/docker/garage-init.sh /usr/local/bin/garage-init
ENTRYPOINT ["/usr/local/bin/garage-init"]
