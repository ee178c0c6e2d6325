# syntax=docker/dockerfile:1
# The instabase-stream image: one image for the producers, the sinks and the simulator (see docker-compose.yml).
# The build stage compiles the TypeScript (npm run build, into dist/); the image runs plain node on it, with
# no TypeScript loader in the processes (tsx's hooks run a thread of their own, 10-15 MB of RSS).
#
#   docker build -t instabase-stream .
#   docker run --rm instabase-stream --help
#   docker run --rm -e KAFKA_BROKERS=... instabase-stream producers

ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: the compiled sources, and production dependencies exactly as the lockfile pins them ----------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
COPY package.json package-lock.json ./
# Fixes to dependencies, applied by the postinstall script (patch-package); see patches/README.md.
COPY patches ./patches
# Every dependency first: the compiler is a devDependency.
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY core ./core
COPY schemas ./schemas
COPY producers ./producers
COPY sinks ./sinks
COPY sim ./sim
COPY cli ./cli
# cli/start.ts imports stack/ (the `start` and `stack` subcommands); the containers never run the stack.
COPY stack ./stack
RUN npm run build && npm prune --omit=dev && npm cache clean --force

# --- runtime ----------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    HTTP_HOST=0.0.0.0 \
    HTTP_PORT=3000
# Everything stays owned by root and read-only for the `node` user the processes run as.
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json package-lock.json ./
# Read at run time from the package's root (core/package-root.ts): the Avro schemas and the dashboard's files.
COPY schemas/*.avsc ./schemas/
COPY cli/dashboard/static ./cli/dashboard/static
# Entry point of the compose `producers` service: switches to the simulator under `--profile demo`.
COPY deploy/docker ./deploy/docker

USER node
EXPOSE 3000
# /healthz answers 200 once the daemon is up and 503 while it is unhealthy (core/http.ts). Slim has no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.HTTP_PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# --no-memory-reducer: what a sink must be started with (core/node-flags.ts); the compose file's producers
# start through deploy/docker/demo-switch.sh without it.
ENTRYPOINT ["node", "--no-memory-reducer", "dist/cli/main.js"]
CMD ["--help"]
