// Subscriptions through the clients frontends use, against a running Weft:
//   WEFT_URL=http://127.0.0.1:8080 DRIVER=target/debug/examples/stream_driver node subscriptions.mjs
// The driver publishes through the server's real producer (same database and Redis).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { createClient as createWsClient } from 'graphql-ws';
import { createClient as createSseClient } from 'graphql-sse';

const base = process.env.WEFT_URL ?? 'http://127.0.0.1:8080';
const driverPath = process.env.DRIVER ?? 'target/debug/examples/stream_driver';
const STREAM = `subscription($m: UUID!, $after: Int) {
  messageStream(messageId: $m, after: $after) { seq kind delta message { status answer } } }`;

async function graphql(query, variables, token) {
  const response = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  assert.ok(!body.errors, JSON.stringify(body.errors));
  return body.data;
}

function startDriver(workspaceId) {
  const child = spawn(driverPath, [workspaceId], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => (await lines.next()).value;
  return {
    ids: next().then(JSON.parse),
    async send(command) {
      child.stdin.write(`${command}\n`);
      const answer = await next();
      assert.match(answer ?? '', /^ok \d+$/, `driver answered ${answer} to ${command}`);
      return Number(answer.split(' ')[1]);
    },
    stop() { child.stdin.end(); },
  };
}

// Collects the events of one subscription until it completes; `onEvent` may act on each.
function collect(client, variables, onEvent = () => {}) {
  return new Promise((resolve, reject) => {
    const events = [];
    client.subscribe({ query: STREAM, variables }, {
      next: (result) => {
        if (result.errors) return reject(new Error(JSON.stringify(result.errors)));
        events.push(result.data.messageStream);
        onEvent(result.data.messageStream, events);
      },
      error: reject,
      complete: () => resolve(events),
    });
  });
}

const withTimeout = (promise, what) => Promise.race([
  promise,
  new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), 15000)),
]);

const email = `client-${Date.now()}@example.com`;
const auth = await graphql(
  'mutation($i: RegisterInput!) { register(input: $i) { accessToken refreshToken } }',
  { i: { email, password: 'correct horse battery staple', name: 'Client' } },
);
const token = auth.register.accessToken;
const org = await graphql(
  'mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { teams { workspaces { id } } } }',
  { i: { name: 'Clients' } }, token,
);
const workspaceId = org.createOrganization.teams[0].workspaces[0].id;
const driver = startDriver(workspaceId);
const { message } = await driver.ids;

// graphql-ws (graphql-transport-ws): live from the start.
const wsUrl = base.replace(/^http/, 'ws') + '/graphql';
const ws = createWsClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` }, retryAttempts: 0 });
const live = collect(ws, { m: message });
// The subscription replays what was published before it started: no race to lose.
await driver.send('deltas 3');
const liveDone = withTimeout(live, 'graphql-ws stream');
await driver.send('deltas 2');
await driver.send('end');
const liveEvents = await liveDone;
assert.deepEqual(liveEvents.map((e) => e.seq), [1, 2, 3, 4, 5, 6]);
assert.equal(liveEvents.map((e) => e.delta ?? '').join(''), 't1 t2 t3 t4 t5 ');
assert.equal(liveEvents.at(-1).kind, 'END');
assert.equal(liveEvents.at(-1).message.status, 'COMPLETED');
console.log('graphql-ws: 6 events in order, END carries the message');

// Resuming after seq 3 on a new connection: the rest, once.
const resumed = await withTimeout(collect(ws, { m: message, after: 3 }), 'graphql-ws resume');
assert.deepEqual(resumed.map((e) => e.seq), [4, 5, 6]);
console.log('graphql-ws: resumed after 3 -> 4, 5, 6');
await ws.dispose();

// graphql-sse (distinct connections mode), with the Authorization header.
const sse = createSseClient({ url: `${base}/graphql`, headers: { authorization: `Bearer ${token}` }, retryAttempts: 0 });
const sseEvents = await withTimeout(collect(sse, { m: message, after: 1 }), 'graphql-sse stream');
assert.deepEqual(sseEvents.map((e) => e.seq), [2, 3, 4, 5, 6]);
console.log('graphql-sse: after 1 -> 2..6, then complete');
sse.dispose();

// A bad token: the socket is closed with 4403.
const refused = await withTimeout(new Promise((resolve) => {
  const bad = createWsClient({
    url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false,
    connectionParams: { authorization: 'Bearer not-a-token' },
    on: { closed: (event) => resolve(event.code) },
  });
  bad.subscribe({ query: STREAM, variables: { m: message } }, { next() {}, error() {}, complete() {} });
}), 'refusal');
assert.equal(refused, 4403);
console.log('graphql-ws: a bad token is closed with 4403');

// Rights end, the socket follows: logging out closes it with 4403; a client whose
// connectionParams is a function (as README shows) reconnects with a fresh token and its
// subscription goes on.
let current = token;
const connected = [];
const closedCodes = [];
const following = createWsClient({
  url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 3, retryWait: async () => {},
  connectionParams: async () => ({ authorization: `Bearer ${current}` }),
  on: { connected: () => connected.push(Date.now()), closed: (event) => closedCodes.push(event.code) },
});
const runs = [];
const feedErrors = [];
following.subscribe({ query: 'subscription($w: UUID!) { workspaceExecutions(workspaceId: $w) { id } }', variables: { w: workspaceId } },
  { next: (r) => runs.push(r), error: (e) => feedErrors.push(e), complete: () => {} });
const until = async (what, check) => {
  const deadline = Date.now() + 15000;
  while (!check()) {
    assert.ok(Date.now() < deadline, `timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};
await until('connected', () => connected.length === 1);
const relogin = await graphql(
  'mutation($i: LoginInput!) { login(input: $i) { accessToken } }',
  { i: { email, password: 'correct horse battery staple' } },
);
current = relogin.login.accessToken;
await graphql('mutation($t: String!) { logout(refreshToken: $t) }', { t: auth.register.refreshToken });
await until('closed with 4403 and connected again', () => closedCodes.includes(4403) && connected.length === 2);
assert.deepEqual(feedErrors, []);
await following.dispose();
console.log('graphql-ws: logout closes the socket with 4403; a fresh token reconnects and the subscription goes on');

// The demo application (ECHO): an end user's message, its reply streamed word by word.
const demoKey = process.env.DEMO_KEY;
const demoApp = process.env.DEMO_APP;
assert.ok(demoKey && demoApp, 'DEMO_KEY and DEMO_APP name the demo the server printed');
const SEND = `mutation($i: SendMessageInput!) { sendMessage(input: $i) {
  conversation { id } assistantMessage { id status } } }`;
const asked = await graphql(SEND, { i: { applicationId: demoApp, query: 'hello from graphql-ws', endUserId: 'client-user' } }, demoKey);
assert.equal(asked.sendMessage.assistantMessage.status, 'PENDING');
const chatWs = createWsClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${demoKey}` }, retryAttempts: 0 });
const reply = await withTimeout(collect(chatWs, { m: asked.sendMessage.assistantMessage.id }), 'demo reply over graphql-ws');
const text = (events) => events.filter((e) => e.kind === 'DELTA').map((e) => e.delta).join('');
assert.equal(text(reply), 'Echo: hello from graphql-ws');
assert.equal(reply.at(-1).kind, 'END');
assert.equal(reply.at(-1).message.status, 'COMPLETED');
assert.ok(reply.length >= 4, 'word by word');
console.log(`demo chat over graphql-ws: ${reply.length - 1} deltas, then END (COMPLETED)`);

// The same conversation over graphql-sse; stopped after two deltas.
const long = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
const again = await graphql(SEND, { i: { applicationId: demoApp, conversationId: asked.sendMessage.conversation.id, query: long, endUserId: 'client-user' } }, demoKey);
const chatSse = createSseClient({ url: `${base}/graphql`, headers: { authorization: `Bearer ${demoKey}` }, retryAttempts: 0 });
let stopping;
const stoppedEvents = await withTimeout(collect(chatSse, { m: again.sendMessage.assistantMessage.id }, (event, events) => {
  if (event.kind === 'DELTA' && events.length === 2) {
    stopping = graphql('mutation($m: UUID!) { stopMessage(messageId: $m) { status answer } }', { m: again.sendMessage.assistantMessage.id }, demoKey);
  }
}), 'demo reply over graphql-sse');
const stopped = (await stopping).stopMessage;
assert.equal(stopped.status, 'STOPPED');
assert.equal(stoppedEvents.at(-1).kind, 'END');
assert.equal(stoppedEvents.at(-1).message.status, 'STOPPED');
assert.equal(text(stoppedEvents), stopped.answer);
assert.ok(stopped.answer.length < ('Echo: ' + long).length, 'stopped before the end');
console.log(`demo chat over graphql-sse: stopped after ${stoppedEvents.length - 1} deltas, the partial reply kept`);
await chatWs.dispose();
chatSse.dispose();

driver.stop();
console.log('all client checks passed');
process.exit(0);
