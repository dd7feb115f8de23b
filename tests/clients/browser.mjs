// Weft in headless Chromium (Debian's package, driven by puppeteer-core), with no network but
// the server and pages of this script:
// - GraphiQL runs a query over HTTP and a subscription over graphql-ws; the results are read
//   from the page, and the page requests nothing from any other host;
// - a chat page on another origin (listed in WEFT_ALLOWED_ORIGINS as PAGE_ORIGIN), holding
//   only an end-user token, sends a message, streams the reply over a WebSocket and reads
//   the history; the same page from an origin not listed (FOREIGN_ORIGIN) is refused.
//   WEFT_URL=http://127.0.0.1:8080 DEMO_APP=<id> DEMO_KEY=app-... \
//   PAGE_ORIGIN=http://127.0.0.1:5173 FOREIGN_ORIGIN=http://127.0.0.1:5174 node browser.mjs
// (SCREENSHOTS=<dir> keeps a picture of each page.)
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';

const base = process.env.WEFT_URL ?? 'http://127.0.0.1:8080';
const demoApp = process.env.DEMO_APP;
const demoKey = process.env.DEMO_KEY;
const browserPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const pageOrigin = process.env.PAGE_ORIGIN;
const foreignOrigin = process.env.FOREIGN_ORIGIN;
assert.ok(demoApp && demoKey, 'DEMO_APP and DEMO_KEY name the demo the server printed');
assert.ok(pageOrigin && foreignOrigin, 'PAGE_ORIGIN (allowed) and FOREIGN_ORIGIN (not) name the chat pages');
const { host } = new URL(base);

const profile = mkdtempSync(join(tmpdir(), 'weft-graphiql-'));
const browser = await puppeteer.launch({
  executablePath: browserPath,
  headless: true,
  userDataDir: profile,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    // No network but the server: every other host name fails to resolve.
    `--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE ${new URL(base).hostname}`,
  ],
});

// Every request the page makes, to prove it names no other host.
const requested = [];
const failures = [];

async function open(params) {
  const page = await browser.newPage();
  page.on('request', (request) => requested.push(request.url()));
  page.on('requestfailed', (request) => failures.push(`${request.url()}: ${request.failure()?.errorText}`));
  page.on('pageerror', (error) => failures.push(`page error: ${error.message}`));
  const query = new URLSearchParams(params).toString();
  await page.goto(`${base}/graphiql?${query}`, { waitUntil: 'load' });
  await page.waitForSelector('.graphiql-execute-button', { timeout: 15000 });
  return page;
}

/** The text of GraphiQL's result pane once `predicate` holds for it. */
async function result(page, expected) {
  await page.waitForFunction(
    (text) => (document.querySelector('.result-window')?.innerText ?? '').includes(text),
    { timeout: 15000 },
    expected,
  );
  return page.$eval('.result-window', (element) => element.innerText);
}

/** A chat UI served from `origin`: with `token` it sends a message, streams the reply over
 * graphql-transport-ws and reads the conversation back; what it saw. */
async function chatPage(origin, token) {
  const port = Number(new URL(origin).port);
  const html = `<!doctype html><meta charset="utf-8"><title>chat</title><script>
    const WEFT = ${JSON.stringify(base)}, TOKEN = ${JSON.stringify(token)}, APP = ${JSON.stringify(demoApp)};
    async function gql(query, variables) {
      const response = await fetch(WEFT + '/graphql', { method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer ' + TOKEN },
        body: JSON.stringify({ query, variables }) });
      const body = await response.json();
      if (body.errors) throw new Error(JSON.stringify(body.errors));
      return [body.data, response.headers.get('x-request-id')];
    }
    function stream(messageId) {
      return new Promise((resolve) => {
        const ws = new WebSocket(WEFT.replace(/^http/, 'ws') + '/graphql', 'graphql-transport-ws');
        const kinds = []; let text = '';
        ws.onopen = () => ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: 'Bearer ' + TOKEN } }));
        ws.onmessage = (m) => {
          const msg = JSON.parse(m.data);
          if (msg.type === 'connection_ack') ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: {
            query: 'subscription($m: UUID!) { messageStream(messageId: $m) { seq kind delta } }', variables: { m: messageId } } }));
          if (msg.type === 'next') { const e = msg.payload.data.messageStream; kinds.push(e.kind); if (e.delta) text += e.delta; }
          if (msg.type === 'complete') { ws.close(1000); resolve({ kinds, text }); }
        };
        ws.onerror = () => resolve({ refused: true });
      });
    }
    function probe() {
      return new Promise((resolve) => {
        const ws = new WebSocket(WEFT.replace(/^http/, 'ws') + '/graphql', 'graphql-transport-ws');
        ws.onopen = () => ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: 'Bearer ' + TOKEN } }));
        ws.onmessage = (m) => { if (JSON.parse(m.data).type === 'connection_ack') { ws.close(1000); resolve('open'); } };
        ws.onerror = () => resolve('refused');
        ws.onclose = () => resolve('refused');
      });
    }
    window.outcome = (async () => {
      const socket = await probe();
      try {
        const [sent, requestId] = await gql('mutation($i: SendMessageInput!) { sendMessage(input: $i) { conversation { id } assistantMessage { id } } }',
          { i: { applicationId: APP, query: 'hello from another origin' } });
        const reply = await stream(sent.sendMessage.assistantMessage.id);
        const [history] = await gql('query($c: UUID!) { conversation(id: $c) { messageCount } }', { c: sent.sendMessage.conversation.id });
        return { requestId, socket, reply: reply.text, kinds: reply.kinds, history: history.conversation.messageCount };
      } catch (e) {
        return { error: String(e && e.message || e), socket };
      }
    })();
  </script>`;
  const server = createServer((_, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(html);
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  try {
    const page = await browser.newPage();
    await page.goto(`${origin}/`, { waitUntil: 'load' });
    return await page.evaluate(() => Promise.race([
      window.outcome,
      new Promise((resolve) => setTimeout(() => resolve({ error: 'timed out' }), 15000)),
    ]));
  } finally {
    server.close();
  }
}

const headers = JSON.stringify({ Authorization: `Bearer ${demoKey}` });
try {
  // A query, pre-filled by ?query= and ?headers=, run with the execute button.
  const page = await open({
    query: `query { application(id: "${demoApp}") { name mode status } }`,
    headers,
  });
  await page.click('.graphiql-execute-button');
  const answer = await result(page, '"mode": "CHAT"');
  assert.match(answer, /"status": "PUBLISHED"/);
  console.log('graphiql: a query over HTTP answered in the page');
  if (process.env.SCREENSHOTS) await page.screenshot({ path: join(process.env.SCREENSHOTS, 'graphiql-query.png') });

  // A subscription over graphql-ws: the demo's ECHO reply, streamed to its END.
  const sent = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${demoKey}` },
    body: JSON.stringify({
      query: 'mutation($i: SendMessageInput!) { sendMessage(input: $i) { assistantMessage { id } } }',
      variables: { i: { applicationId: demoApp, query: 'streamed into GraphiQL', endUserId: 'graphiql' } },
    }),
  }).then((r) => r.json());
  assert.ok(!sent.errors, JSON.stringify(sent.errors));
  const messageId = sent.data.sendMessage.assistantMessage.id;
  const live = await open({
    query: `subscription { messageStream(messageId: "${messageId}") { seq kind delta message { answer status } } }`,
    headers,
  });
  await live.click('.graphiql-execute-button');
  const end = await result(live, '"kind": "END"');
  assert.match(end, /"answer": "Echo: streamed into GraphiQL"/);
  assert.match(end, /"status": "COMPLETED"/);
  console.log('graphiql: a subscription over graphql-ws streamed to its END in the page');
  if (process.env.SCREENSHOTS) await live.screenshot({ path: join(process.env.SCREENSHOTS, 'graphiql-subscription.png') });

  const elsewhere = requested.filter((url) => {
    const { protocol, host: to } = new URL(url);
    return !(protocol === 'data:' || to === host);
  });
  assert.deepEqual(elsewhere, [], 'the page requested nothing but the server');
  assert.deepEqual(failures, [], 'no request of the page failed');
  console.log(`graphiql: ${requested.length} requests, all to ${host}`);

  // The backend mints an end-user token; the chat page on another origin holds only that.
  const minted = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${demoKey}` },
    body: JSON.stringify({
      query: 'mutation($i: CreateEndUserTokenInput!) { createEndUserToken(input: $i) { token } }',
      variables: { i: { applicationId: demoApp, endUserId: 'browser-user' } },
    }),
  }).then((r) => r.json());
  assert.ok(!minted.errors, JSON.stringify(minted.errors));
  const token = minted.data.createEndUserToken.token;
  const chat = await chatPage(pageOrigin, token);
  assert.equal(chat.error, undefined, chat.error);
  assert.equal(chat.reply, 'Echo: hello from another origin');
  assert.deepEqual(chat.kinds.at(-1), 'END');
  assert.equal(chat.history, 2);
  assert.ok(chat.requestId, 'x-request-id is readable by the page');
  assert.equal(chat.socket, 'open');
  console.log(`chat page on ${pageOrigin}: sent, streamed ${chat.kinds.length} events over WebSocket, read the history`);
  const refused = await chatPage(foreignOrigin, token);
  assert.match(refused.error ?? '', /Failed to fetch/);
  assert.equal(refused.socket, 'refused');
  console.log(`chat page on ${foreignOrigin} (not allowed): the request and the socket are refused`);
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log('browser checks passed');
process.exit(0);
