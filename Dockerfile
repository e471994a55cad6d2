# syntax=docker/dockerfile:1
# proofpod's images, one multi-stage build:
#
#   docker build --target scheduler       -t proofpod/scheduler:0.1.0 .        the scheduler (Kubernetes substrate)
#   docker build --target task            -t proofpod/task:0.1.0 .             fetch and reporter containers
#   docker build --target prover-coq      -t proofpod/prover-coq:0.1.0 .       Coq (Debian's coq), on the task image: build and check
#   docker build --target prover-metamath -t proofpod/prover-metamath:0.1.0 .  metamath-rs (ours) and metamath C, set.mm and iset.mm
#   docker build --target prover-smt      -t proofpod/prover-smt:0.1.0 .       z3 and cvc5
#   docker build --target prover-agda     -t proofpod/prover-agda:0.1.0 .      Agda and its standard library
#   docker build --target local           -t proofpod/local:0.1.0 .            scheduler + bubblewrap + provers (substrate=local)
#
# Every image keeps the programs at /opt/proofpod (dist/, node_modules/, package.json): the pod
# contract runs /opt/proofpod/dist/pod-programs/*.mjs, and the local substrate binds the same layout.
# Those are the task-pod programs, each bundled with the contract and zod into one file that starts
# fast (`npm run build:pod-programs`). The task and prover images hold only them: no scheduler code
# runs where proofs are checked.
ARG NODE_IMAGE=node:26-trixie-slim
ARG RUST_IMAGE=rust:1-slim-trixie

# proofpod-metamath-verify, our program around metamath-rs, with the crates Cargo.lock pins.
FROM ${RUST_IMAGE} AS metamath-verify
WORKDIR /src
COPY task-pod/metamath-verify ./
RUN cargo build --release --locked && install -m 0755 target/release/proofpod-metamath-verify /proofpod-metamath-verify

FROM ${NODE_IMAGE} AS build
WORKDIR /opt/proofpod
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY contract contract
COPY scheduler scheduler
COPY task-pod task-pod
COPY smoke smoke
COPY ui ui
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# The Node.js userland every image shares, without the build tools.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
COPY --from=build /opt/proofpod/package.json /opt/proofpod/package.json
COPY --from=build /opt/proofpod/node_modules /opt/proofpod/node_modules
COPY --from=build /opt/proofpod/dist /opt/proofpod/dist

FROM runtime AS scheduler
# The chart runs it with a read-only root filesystem, /tmp and /var/lib/proofpod as emptyDirs.
RUN mkdir -p /var/lib/proofpod && chown 1000:1000 /var/lib/proofpod
ENV HOST=0.0.0.0 PORT=8080 PROOFPOD_HOME=/var/lib/proofpod PROOFPOD_SUBSTRATE=kubernetes
USER 1000:1000
EXPOSE 8080
CMD ["node", "/opt/proofpod/dist/scheduler/main.js"]

# The task-pod programs alone: fetch, check and reporter import only contract/ and zod
# (test/contract-imports.test.ts), and each is one bundled file.
FROM ${NODE_IMAGE} AS task
ENV NODE_ENV=production
COPY --from=build /opt/proofpod/dist/pod-programs /opt/proofpod/dist/pod-programs
# git for the quarantine fetch, CA certificates for https remotes. Nothing else: the prover
# profiles' images add their prover on top of this one (the build container runs the prover's
# build step with the image's /bin/sh, the check container the check wrapper with node).
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/*
USER 65532:65532

FROM task AS prover-coq
USER root
# make: project builds run coq_makefile's Makefile (profile coq, project); libcoq-stdpp: the
# library the coq profile lists (its version and digest go into the evidence).
RUN apt-get update \
 && apt-get install -y --no-install-recommends coq make libcoq-stdpp \
 && rm -rf /var/lib/apt/lists/*
USER 65532:65532

FROM task AS prover-metamath
USER root
# metamath-databases: the reference databases the profiles pin by digest (scheduler/prover-profiles.ts);
# a Debian release with other files fails here rather than in every check.
RUN apt-get update \
 && apt-get install -y --no-install-recommends metamath metamath-databases \
 && rm -rf /var/lib/apt/lists/* \
 && printf '%s  %s\n' \
   4d93307bc81337a621031739acfffb4159175f94fb90e727f4a231401091e45b /usr/share/metamath/databases/set.mm \
   dc494d817dc1c0fe6874c0969ee79fdebd0967382cd7c42d3ba1da078d2d3bd8 /usr/share/metamath/databases/iset.mm \
   | sha256sum -c -
COPY --from=metamath-verify /proofpod-metamath-verify /opt/proofpod/dist/bin/proofpod-metamath-verify
USER 65532:65532

FROM task AS prover-smt
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends z3 cvc5 \
 && rm -rf /var/lib/apt/lists/*
USER 65532:65532

FROM task AS prover-agda
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends agda agda-stdlib \
 && rm -rf /var/lib/apt/lists/*
USER 65532:65532

# substrate=local: the scheduler runs every attempt in a bubblewrap sandbox inside its own pod, so
# this image holds the scheduler and the provers too. It runs as root (the sandboxes drop to
# unprivileged uids of each attempt's own).
FROM runtime AS local
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates bubblewrap coq make libcoq-stdpp metamath metamath-databases z3 cvc5 agda agda-stdlib \
 && rm -rf /var/lib/apt/lists/*
COPY --from=metamath-verify /proofpod-metamath-verify /opt/proofpod/dist/bin/proofpod-metamath-verify
ENV HOST=0.0.0.0 PORT=8080 PROOFPOD_HOME=/var/lib/proofpod PROOFPOD_SUBSTRATE=local
CMD ["node", "/opt/proofpod/dist/scheduler/main.js"]
