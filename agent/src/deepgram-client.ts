/**
 * `createDeepgramClient`: the `@deepgram/sdk` v5 client both voice directions use, aimed at one base URL
 * (Deepgram's, or a local server speaking its format in tests) for REST and streaming alike.
 */
import { DeepgramClient, DeepgramEnvironment } from '@deepgram/sdk';

export interface DeepgramClientOptions {
  /** Sent as `Authorization: Token <apiKey>`. */
  apiKey: string;
  /** `https://api.deepgram.com` (config DEEPGRAM_BASE_URL); streaming uses the same host over ws(s). */
  baseUrl: string;
}

export function createDeepgramClient(options: DeepgramClientOptions): DeepgramClient {
  const base = options.baseUrl.replace(/\/+$/, '');
  const url = new URL(base);
  url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
  const streaming = url.href.replace(/\/+$/, '');
  return new DeepgramClient({
    // Given explicitly: the SDK would otherwise fall back to DEEPGRAM_API_KEY from process.env, and only the
    // shared config reads the environment.
    apiKey: options.apiKey,
    // An environment rather than `baseUrl`: `baseUrl` would also be used, unchanged, as the websocket URL.
    environment: { ...DeepgramEnvironment.Production, base, production: streaming },
  });
}
