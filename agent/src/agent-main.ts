/**
 * The voice agent process (Procfile `agent`): speaks for clones in LiveKit rooms (agent/src/voice-agent.ts).
 * Needs DEEPGRAM_API_KEY and a LiveKit server (LIVEKIT_URL); connects to the gateway at AGENT_GATEWAY_URL.
 */
import { hostname } from 'node:os';
import { dispose } from '@livekit/rtc-node';
import { loadConfigOrExit } from '#shared/config/config.ts';
import { createLogger } from '#shared/observability/logger.ts';
import { VoiceAgent } from './voice-agent.ts';

const config = loadConfigOrExit();
const logger = createLogger(config, 'agent');
if (!config.DEEPGRAM_API_KEY) {
  logger.fatal('DEEPGRAM_API_KEY is not set: the voice agent needs Deepgram to hear and speak');
  process.exit(1);
}
const agent = new VoiceAgent({ config, logger, agentId: `${hostname()}-${process.pid}` });
await agent.start();
logger.info({ gateway: config.AGENT_GATEWAY_URL }, 'voice agent connected');

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    void agent
      .close()
      .then(() => dispose())
      .then(() => process.exit(0));
  });
}
