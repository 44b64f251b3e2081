# syntax=docker/dockerfile:1
#
# open311-server container image (multi-stage).
#
# Database:
#   * Production deployments should set DATABASE_URL to a PostgreSQL >= 14
#     server with PostGIS >= 3, e.g.
#       DATABASE_URL=postgres://user:pass@db-host:5432/open311
#   * When DATABASE_URL is unset, an embedded PGlite database is kept under
#     DATA_DIR (/app/data, a volume). This is meant for evaluation and small
#     deployments only; mount a persistent volume at /app/data to keep it.
#     SEED_DEMO defaults to true only in that embedded mode.
#
# Migrations / operator CLI (same image, same environment as the server):
#   docker run --rm -e DATABASE_URL=... <image> node dist/cli/main.js migrate
#   docker run --rm -e DATABASE_URL=... <image> node dist/cli/main.js keys create --name my-app
#   Other commands: demo, services import <file>, services list,
#                   keys list, keys revoke <id>
#   On the embedded database, while the server runs (it runs the command for the CLI):
#   docker exec <container> node dist/cli/main.js keys create --name ops --scope admin
#
# Other runtime settings: LOG_LEVEL, PUBLIC_BASE_URL, SEED_DEMO, TRUST_PROXY.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------------------
# build: full install (with dev dependencies) and TypeScript compile
# ---------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
 && if [ -f src/domain/demo/demo-catalog.json ] && [ ! -f dist/domain/demo/demo-catalog.json ]; then \
      mkdir -p dist/domain/demo \
      && cp src/domain/demo/demo-catalog.json dist/domain/demo/demo-catalog.json; \
    fi

# ---------------------------------------------------------------------------
# deps: production-only node_modules
# ---------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev \
 && npm cache clean --force

# ---------------------------------------------------------------------------
# runtime
# ---------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production PORT=8080 HOST=0.0.0.0 DATA_DIR=/app/data
WORKDIR /app

COPY --chown=node:node package.json ./
COPY --chown=node:node --from=deps /app/node_modules ./node_modules
COPY --chown=node:node --from=build /app/dist ./dist
COPY --chown=node:node migrations ./migrations

# Writable data directory for the embedded PGlite database (DATA_DIR).
RUN mkdir -p /app/data && chown node:node /app/data
VOLUME ["/app/data"]

USER node

EXPOSE 8080

# No curl in the slim image: use node's built-in fetch against /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

CMD ["node", "dist/server.js"]
