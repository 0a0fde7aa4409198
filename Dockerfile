# tapmesh agent image. Run it privileged with the host's network and PID namespaces and a shared
# /run/netns, so the sandboxes it creates are real host namespaces (see README "Docker").
FROM node:20-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/tapmesh
COPY . .
# npm ci builds the native addon (node-gyp) and the TypeScript; then drop the dev tools.
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 util-linux procps \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/tapmesh
COPY --from=build /opt/tapmesh/package.json ./
COPY --from=build /opt/tapmesh/node_modules ./node_modules
COPY --from=build /opt/tapmesh/build/Release/tapmesh_native.node ./build/Release/
COPY --from=build /opt/tapmesh/dist ./dist
COPY --from=build /opt/tapmesh/bin ./bin
ENV TAPMESH_SOCKET=/run/tapmesh/tapmesh.sock
VOLUME ["/var/lib/tapmesh"]
ENTRYPOINT ["/opt/tapmesh/bin/tapmesh", "agent"]
