# The deployer's own image: what the scheduled drift check runs as a Fargate task, and what a CI
# job can run instead of installing the binary. Build it from the repository root:
#
#   docker build -t deployer:$(git rev-parse --short HEAD) .
#
# Run it with the configuration mounted read-only (it never writes there):
#
#   docker run --rm -v "$PWD/config:/config:ro" -e AWS_PROFILE -v ~/.aws:/home/nonroot/.aws:ro \
#     deployer:<tag> --config-dir /config drift --env prod --output json
#
# Multi-stage: cargo builds a release binary; the runtime image is distroless (glibc and CA
# certificates, no shell, no package manager) and runs as the unprivileged `nonroot` user.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && strip target/release/deployer

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/deployer /usr/local/bin/deployer
COPY config /config
# 65532 is distroless's `nonroot` user and group.
USER 65532:65532
WORKDIR /home/nonroot
ENV DEPLOYER_CONFIG_DIR=/config
ENTRYPOINT ["/usr/local/bin/deployer"]
CMD ["--help"]
