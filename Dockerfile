# keyswap as a sidecar container. Build: docker build -t keyswap . ; run with compose.yaml.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --ignore-scripts
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
# tini as PID 1 forwards SIGTERM so keyswap drains and closes its audit log cleanly; nftables for the egress lock
# (the Kubernetes sidecar's egress-lock init container runs `keyswap egress lock`).
RUN apt-get update && apt-get install -y --no-install-recommends tini nftables && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/keyswap
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json bindings.example.yaml ./
# A fixed non-root UID that owns nothing in the image; state and logs live on volumes.
USER 10001:10001
EXPOSE 14322
HEALTHCHECK --interval=30s --timeout=3s --retries=3 \
  CMD ["node", "-e", "require('http').get({host:'127.0.0.1',port:14322,path:'http://keyswap.invalid/healthz',headers:{host:'keyswap.invalid'}},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/opt/keyswap/dist/cli/main.js"]
CMD ["serve", "--config", "/etc/keyswap/keyswap.yaml", "--allow-non-loopback"]
