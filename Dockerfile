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
COPY tsconfig.json tsconfig.build.json rolldown.config.js ./
COPY cli.ts ./
COPY cli/ cli/
COPY lib/ lib/
COPY webhook/ webhook/
COPY certs/ certs/
COPY kube/ kube/
# dist/ as a bundle (rolldown.config.js): serve loads 13 files instead of about 550.
RUN npm run bundle \
 && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
# V8's compiled code for every module `serve` loads, made at build time: compiling them again at
# each start is most of the start-up (docs/benchmarks.md, "Memory and start-up as deployed").
# Node keeps the cache per uid, so it is made as the uid that runs, by the start-up path itself
# (serve --tls-secret, stopping where it finds no cluster), then made read-only.
ENV NODE_COMPILE_CACHE=/app/.compile-cache
# A young generation of at most 8 MiB per semi-space instead of Node 24's larger default: under
# 16 saturating connections peak RSS 184-215 instead of 271-289 MiB, at the same CPU per request
# (docs/benchmarks.md, "V8 flags"). 4 MiB saves more memory but costs CPU.
ENV NODE_OPTIONS=--max-semi-space-size=8
WORKDIR /app
COPY --from=build --chown=0:0 /src/package.json ./package.json
COPY --from=build --chown=0:0 /src/node_modules ./node_modules
COPY --from=build --chown=0:0 /src/dist-image ./dist
RUN mkdir .compile-cache \
 && chown 65532:65532 .compile-cache \
 && setpriv --reuid=65532 --regid=65532 --clear-groups env HOME=/nonexistent \
      node /app/dist/cli.js serve --tls-secret warm-up --webhook-config warm-up --namespace warm-up \
      --tls-cert /nonexistent/tls.crt --tls-key /nonexistent/tls.key 2>&1 | grep -q 'no Kubernetes cluster configured' \
 && test -n "$(ls -A .compile-cache)" \
 && chown -R 0:0 .compile-cache \
 && chmod -R a+rX,a-w .compile-cache
# Numeric, so the kubelet can verify runAsNonRoot; owns nothing in /app (read-only at run time).
USER 65532:65532
EXPOSE 8443 8080
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["serve"]
