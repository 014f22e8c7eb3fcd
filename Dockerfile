# syntax=docker/dockerfile:1
# cacerts-agent container image, for linux/amd64 and linux/arm64.
#
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg BUILD_IMAGE=debian:12@sha256:<digest> \
#     --build-arg RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot@sha256:<digest> \
#     -t ghcr.io/cacerts-agent/cacerts-agent:0.1.0 .
#
# The build stage runs on the build machine's own platform and cross-compiles for the target
# (cmake/debian-cross.cmake) when they differ: one fully static binary (README's build script,
# static switches on, tests off), stripped, plus its license notices and an SPDX SBOM
# (scripts/build-image.sh). The runtime image is a distroless static base plus those files: no
# shell, no package manager, no Vault test server, running as 1337:1337 like istiod.
# tests/deploy/test_image.py runs the build-image.sh line below and then the binary in an
# otherwise empty root, so keep the build to that one script. docs/install.md, "The image",
# says how to pin the base images by digest (the defaults here are tags: no registry was
# reachable to read their digests).
ARG BUILD_IMAGE=debian:12
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM --platform=$BUILDPLATFORM ${BUILD_IMAGE} AS build
ARG TARGETARCH
ARG BUILD_IMAGE
ARG RUNTIME_IMAGE
# --build-arg SOURCE_DATE_EPOCH=<seconds> fixes the SBOM's creation time (reproducible builds).
ARG SOURCE_DATE_EPOCH
# The target's libraries as Debian multiarch packages (scripts/install-deps.sh --image). The
# full single-header cpp-httplib (a static build cannot use Debian's shared library) comes from
# Debian's own source package, with Debian's security fixes, at the version of the installed
# libcpp-httplib-dev whose notice and version the SBOM records.
COPY scripts/install-deps.sh /tmp/install-deps.sh
RUN sed -i 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources \
 && bash /tmp/install-deps.sh --image "$TARGETARCH" \
 && mkdir -p /opt/httplib-src /opt/httplib \
 && cd /opt/httplib-src \
 && apt-get source "cpp-httplib=$(dpkg-query -W -f='${Version}' libcpp-httplib-dev)" \
 && cp cpp-httplib-*/httplib.h /opt/httplib/httplib.h \
 && rm -rf /opt/httplib-src /var/lib/apt/lists/*

WORKDIR /src
COPY . .
# The README's build (RelWithDebInfo, warnings as errors), linked static by lld with the hot
# code first (scripts/link-order.txt) and stripped; the notices and SBOM from the packages that
# build used.
RUN bash scripts/build-image.sh --arch "$TARGETARCH" --httplib /opt/httplib \
      --base-image "$BUILD_IMAGE" --base-image "$RUNTIME_IMAGE" build-static image

FROM ${RUNTIME_IMAGE}
# OCI annotations; the version equals project(VERSION) in CMakeLists.txt and the manifests'
# image tag (tests/deploy/test_lint.py checks).
LABEL org.opencontainers.image.title="cacerts-agent" \
      org.opencontainers.image.description="Publishes istiod's plugged-in CA from HashiCorp Vault into /etc/cacerts" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /src/image/cacerts-agent /cacerts-agent
COPY --from=build /src/image/doc /usr/share/doc/cacerts-agent
USER 1337:1337
ENTRYPOINT ["/cacerts-agent"]
