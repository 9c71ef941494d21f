# The pipeline image used by docker-compose.yml (never built here: no Docker engine on the machines this
# project is developed on; test/unit/docker.test.ts checks this file and the compose file statically).
#
# Two stages: `build` installs every dependency and compiles TypeScript; the runtime stage gets the
# compiled JS, production dependencies only and the data files the code reads at run time, owned by
# root and read-only to the unprivileged `node` user, which owns only /app/.tributary (run records,
# reports, backfill state).
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /build
# CPU-only by default (.npmrc skips onnxruntime-node's CUDA download). `--build-arg
# ONNXRUNTIME_NODE_INSTALL=cuda12` fetches the CUDA execution provider; the runtime then also needs a
# base image with CUDA 12 and cuDNN 9 (NODE_IMAGE) and a GPU passed to the container.
ARG ONNXRUNTIME_NODE_INSTALL=skip
ENV ONNXRUNTIME_NODE_INSTALL=${ONNXRUNTIME_NODE_INSTALL}
COPY package.json package-lock.json .npmrc tsconfig.json tsconfig.build.json ./
COPY src ./src
# `npm ci` runs the `prepare` script (tsc -> dist/); pruning then leaves production dependencies only.
RUN npm ci --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    TRIBUTARY_HOME=/app/.tributary \
    TRIBUTARY_METRICS_HOST=0.0.0.0
WORKDIR /app
COPY --from=build /build/package.json /build/package-lock.json ./
COPY --from=build /build/node_modules ./node_modules
COPY --from=build /build/dist ./dist
# Files the compiled code reads from the package root at run time (Lua scripts loaded into Redis,
# Avro schemas, topologies, model versions with their cards and batch feature files, `init` templates).
COPY src/features/scripts ./src/features/scripts
COPY src/routing/scripts ./src/routing/scripts
COPY schemas ./schemas
COPY topologies ./topologies
COPY models ./models
COPY templates ./templates
COPY scripts/docker-healthcheck.js ./scripts/docker-healthcheck.js
RUN mkdir -p /app/.tributary && chown node:node /app/.tributary
USER node
VOLUME ["/app/.tributary"]
EXPOSE 9400
# Healthy once the process's /readyz answers 200 (stages running with partitions assigned, model loaded).
# Port: the first argument, else TRIBUTARY_METRICS_PORT, else 9400 (the drift service passes 9401).
HEALTHCHECK --interval=10s --timeout=5s --start-period=90s --retries=3 CMD ["node", "scripts/docker-healthcheck.js"]
CMD ["node", "dist/cli/main.js", "run", "topologies/fraud-detection.yaml"]
