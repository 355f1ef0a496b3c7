import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Socket } from 'socket.io-client';
import { clientPayloadSchemas, type ClientToServerEvents, type ServerToClientEvents } from '#shared/contract/socket-events.ts';

// Compile-time half: `npm test` type-checks this file; a wrong payload must not compile.
type Client = Socket<ServerToClientEvents, ClientToServerEvents>;
function typeChecks(client: Client): void {
  client.emit('session:start', { cloneId: 'c', type: 'chat' }, () => undefined);
  // @ts-expect-error a session type that does not exist
  client.emit('session:start', { cloneId: 'c', type: 'fax' }, () => undefined);
  // @ts-expect-error message:send needs a clientMessageId
  client.emit('message:send', { sessionId: 's', content: 'hi' }, () => undefined);
  // @ts-expect-error an event that is not in the contract
  client.emit('session:delete', { sessionId: 's' });
  client.on('meter:tick', (tick) => {
    // @ts-expect-error money is a decimal string, never a number
    const n: number = tick.cost;
    void n;
  });
}
void typeChecks;

const schemas = clientPayloadSchemas({ maxMessageChars: 10 });

test('the runtime schemas reject what the types reject', () => {
  const cloneId = '6f1c8d6e-1b1f-4c7e-9a40-2a4f7b0c1d11';
  assert.ok(schemas['session:start'].safeParse({ cloneId, type: 'chat' }).success);
  assert.not.ok(schemas['session:start'].safeParse({ cloneId, type: 'fax' }).success);
  assert.not.ok(schemas['message:send'].safeParse({ sessionId: cloneId, content: 'hi' }).success);
  assert.not.ok(schemas['message:send'].safeParse({ sessionId: cloneId, clientMessageId: 'a', content: '12345678901' }).success);
  assert.ok(schemas['message:send'].safeParse({ sessionId: cloneId, clientMessageId: 'a', content: '1234567890' }).success);
  assert.not.ok(schemas['session:rate'].safeParse({ sessionId: cloneId, rating: 0 }).success);
  assert.not.ok(schemas['session:rate'].safeParse({ sessionId: cloneId, rating: 2.5 }).success);
});

test.run();
