# syntax=docker/dockerfile:1
# cacerts-agent container image.
#
#   docker build -t ghcr.io/cacerts-agent/cacerts-agent:0.1.0 .
#
# The build stage compiles one fully static binary with the README's build script (static
# switches on, tests off). The runtime image is a distroless static base plus that
# binary: no shell, no package manager, no Vault test server, running as 1337:1337 like
# istiod. tests/deploy/test_image.py runs the build commands below and then the binary in an
# otherwise empty root, so keep its build steps to scripts/build.sh and strip.

FROM debian:12 AS build
# The full single-header cpp-httplib (a static build cannot use Debian's shared library)
# comes from Debian's own source package, with Debian's security fixes.
RUN sed -i 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      binutils cmake dpkg-dev g++ lld ninja-build \
      libcli11-dev libfmt-dev libspdlog-dev libssl-dev nlohmann-json3-dev \
 && mkdir -p /opt/httplib-src /opt/httplib \
 && cd /opt/httplib-src \
 && apt-get source cpp-httplib \
 && cp cpp-httplib-*/httplib.h /opt/httplib/httplib.h \
 && rm -rf /opt/httplib-src /var/lib/apt/lists/*

WORKDIR /src
COPY . .
# The README's build (RelWithDebInfo, warnings as errors), linked static by lld with the hot
# code first (scripts/link-order.txt); strip drops the debug information.
RUN bash scripts/build.sh build-static -DCACERTS_STATIC=ON -DCACERTS_BUILD_TESTS=OFF \
      -DCACERTS_HTTPLIB_SINGLE_HEADER_DIR=/opt/httplib \
 && strip --strip-all build-static/cacerts-agent

FROM gcr.io/distroless/static-debian12:nonroot
# OCI annotations; the version equals project(VERSION) in CMakeLists.txt and the manifests'
# image tag (tests/deploy/test_lint.py checks).
LABEL org.opencontainers.image.title="cacerts-agent" \
      org.opencontainers.image.description="Publishes istiod's plugged-in CA from HashiCorp Vault into /etc/cacerts" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /src/build-static/cacerts-agent /cacerts-agent
USER 1337:1337
ENTRYPOINT ["/cacerts-agent"]
