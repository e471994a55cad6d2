# syntax=docker/dockerfile:1
# Scheduler image. Build: docker build --target scheduler -t proofpod/scheduler .
# (The task-pod and prover images join this file with the task-pod programs.)

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY scheduler scheduler
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim AS scheduler
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080 PROOFPOD_HOME=/var/lib/proofpod
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
RUN mkdir -p /var/lib/proofpod && chown node:node /var/lib/proofpod
# The image's unprivileged user; the chart runs it with a read-only root filesystem and DATABASE_URL set.
USER node
EXPOSE 8080
CMD ["node", "dist/scheduler/main.js"]
