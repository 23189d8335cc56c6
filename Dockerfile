# Agora's image: the master, the agent and the CLI as static binaries.
# Build: make docker-build IMG=<registry>/agora:<tag>
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY agent/ agent/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY examples/ examples/
COPY config/ config/
COPY internal/ internal/
COPY pkg/ pkg/
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/ ./cmd/...

# distroless/static: no shell, CA certificates, root by default. The master's
# Deployment runs it as user 65532; the agent runs as root (it manages cgroups
# and runs tasks in the host's root filesystem).
FROM gcr.io/distroless/static-debian12
COPY --from=build /out/ /
ENTRYPOINT ["/agora-master"]
