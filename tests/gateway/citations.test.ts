import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { createEmbedder } from '#shared/embeddings/create-embedder.ts';
import { userKeys } from '#shared/live-state/keys.ts';
import { ingestBudget } from '#billing/ingest/ingest-budget.ts';
import { ingestDocument } from '#billing/ingest/ingest-document.ts';
import { createClone, createUser, nextEvent, request, startSystem, waitFor, type TestSystem } from '../support/system.ts';

// The reply path end to end: a document ingested through the real pipeline (embeddings from the fake OpenAI
// server through the SDK), retrieved for the question, put in the prompt, cited on the message and stored.
let system: TestSystem;
let dir: string;
test.before(async () => {
  system = await startSystem();
  dir = mkdtempSync(path.join(tmpdir(), 'tollgate-docs-'));
});
test.after(async () => {
  await system?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function addDocument(cloneId: string, title: string, text: string): Promise<string> {
  const id = randomUUID();
  const file = path.join(dir, `${id}.txt`);
  writeFileSync(file, text);
  await system.database.db
    .insertInto('documents')
    .values({ id, clone_id: cloneId, title, file_name: `${title}.txt`, file_path: file, file_type: 'text/plain', file_size_bytes: text.length })
    .execute();
  const outcome = await ingestDocument(system.database.db, id, {
    embedder: createEmbedder(system.config),
    uploadDir: dir,
    maxUploadBytes: 1_000_000,
    chunkTokens: 200,
    overlapTokens: 20,
    budget: ingestBudget(system.config),
  });
  assert.is(outcome.status, 'completed');
  return id;
}

test('the reply rests on the clone\'s own passages and cites them; another clone\'s never appear', async () => {
  const userId = await createUser(system, '20.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const { cloneId: otherClone } = await createClone(system, '1.0000');
  const bernoulli = await addDocument(cloneId, 'Bernoulli numbers', 'The Bernoulli numbers are a sequence of rational numbers that appear in the Taylor series of the tangent function and in sums of powers of integers.');
  await addDocument(cloneId, 'Sourdough', 'A sourdough starter is a fermented mixture of flour and water kept alive by regular feeding.');
  const foreign = await addDocument(otherClone, 'Bernoulli secrets', 'The Bernoulli numbers Bernoulli numbers Bernoulli numbers sequence rational tangent.');

  const client = await system.connect(userId);
  const started = await request(client, 'session:start', { cloneId, type: 'chat' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  const sessionId = started.session.id;
  const completed = nextEvent(client, 'message:completed', (c) => c.sessionId === sessionId, 5000);
  await request(client, 'message:send', { sessionId, clientMessageId: 'q', content: 'What are the Bernoulli numbers?' });
  const { message } = await completed;
  const citations = message.citations ?? [];
  assert.ok(citations.length > 0, 'cited');
  assert.is(citations[0]!.documentId, bernoulli, 'the best passage first');
  assert.is(citations[0]!.title, 'Bernoulli numbers');
  assert.not.ok(citations.some((c) => c.documentId === foreign), 'never another clone\'s document');
  const prompt = JSON.stringify(system.openai.requests.at(-1)!.body.messages);
  assert.match(prompt, /sequence of rational numbers/);
  assert.not.match(prompt, /Bernoulli secrets/);

  const row = await waitFor(() => system.database.db.selectFrom('messages').selectAll().where('id', '=', message.id).executeTakeFirst(), 5000, 'the stored reply');
  assert.equal(row.citations, citations);

  // the history reads the same, citations included, from the live state and, once that is gone, from Postgres
  const live = await request(client, 'session:history', { sessionId });
  if (!live.ok) throw new Error(JSON.stringify(live));
  assert.equal(live.messages.find((m) => m.id === message.id)?.citations, citations);
  assert.ok((await request(client, 'session:end', { sessionId })).ok);
  await waitFor(() => system.database.db.selectFrom('sessions').select('id').where('id', '=', sessionId).where('settled_at', 'is not', null).executeTakeFirst(), 10_000, 'settlement');
  const keys = userKeys(system.config.REDIS_PREFIX, userId);
  await system.redis.del(keys.session(sessionId), keys.messageLog(sessionId), keys.clientMessageIds(sessionId), keys.messageIds(sessionId));
  const archived = await request(client, 'session:history', { sessionId });
  if (!archived.ok) throw new Error(JSON.stringify(archived));
  assert.equal(archived.messages, live.messages, 'the settled history is the live one');
  client.disconnect();
});

test.run();
