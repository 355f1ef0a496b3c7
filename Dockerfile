# One image for the gateway, the billing worker, the voice agent and migrations; the command picks which (see docker-compose.yml).
# TypeScript runs through tsx, so the image carries the sources and the full dependency tree.
FROM node:24-slim

WORKDIR /app

COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund && npm cache clean --force

COPY shared ./shared
COPY gateway ./gateway
COPY billing ./billing
COPY agent ./agent
COPY scripts ./scripts
COPY tsconfig.json tsconfig.base.json ./

USER node
EXPOSE 3000 3001
CMD ["node", "--import", "tsx", "gateway/src/main.ts"]
