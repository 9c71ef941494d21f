# The pipeline image used by docker-compose.yml.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json .npmrc tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm ci --no-audit --no-fund && npm prune --omit=dev
COPY schemas ./schemas
COPY topologies ./topologies
COPY models ./models
USER node
CMD ["node", "dist/cli/main.js", "run", "topologies/fraud-detection.yaml"]
