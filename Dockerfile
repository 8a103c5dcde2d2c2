# syntax=docker/dockerfile:1
# The dfs-injector webhook image:
#   docker build -t ghcr.io/dfs-injector/dfs-injector:0.1.0 .
# The official Node.js image on Debian trixie slim. Node 24 is a Long Term Support line
# (maintained until April 2028); the tag is the major line, so a rebuild picks up its security
# releases. The test suite assembles this base from Debian's archive and the official Node.js
# binary (test/images/build.sh) and builds this same file.
ARG NODE_IMAGE=node:24-trixie-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# Dependencies first, so a source change does not reinstall them.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY cli.ts ./
COPY cli/ cli/
COPY lib/ lib/
COPY webhook/ webhook/
COPY certs/ certs/
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && find dist -name '*.map' -delete

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=0:0 /src/package.json ./package.json
COPY --from=build --chown=0:0 /src/node_modules ./node_modules
COPY --from=build --chown=0:0 /src/dist ./dist
# Numeric, so the kubelet can verify runAsNonRoot; owns nothing in /app (read-only at run time).
USER 65532:65532
EXPOSE 8443 8080
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["serve"]
