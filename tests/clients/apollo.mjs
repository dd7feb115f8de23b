// Apollo Client, unmodified, against a running Weft: HTTP for queries and mutations,
// GraphQLWsLink (graphql-ws) for subscriptions, first with the demo application's API key
// (a customer's backend), then with an end-user token it mints (what a browser holds).
//   WEFT_URL=http://127.0.0.1:8080 DEMO_APP=<id> DEMO_KEY=app-... node apollo.mjs
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import { ApolloClient, HttpLink, InMemoryCache, gql, split } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { getMainDefinition } from '@apollo/client/utilities';

const base = process.env.WEFT_URL ?? 'http://127.0.0.1:8080';
const demoApp = process.env.DEMO_APP;
const demoKey = process.env.DEMO_KEY;
assert.ok(demoApp && demoKey, 'DEMO_APP and DEMO_KEY name the demo the server printed');

/** An Apollo Client sending `token` over HTTP and in graphql-ws's connection_init. */
function apollo(token) {
  const http = new HttpLink({ uri: `${base}/graphql`, headers: { authorization: `Bearer ${token}` } });
  const wsClient = createClient({
    url: base.replace(/^http/, 'ws') + '/graphql',
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
  });
  const link = split(
    ({ query }) => {
      const definition = getMainDefinition(query);
      return definition.kind === 'OperationDefinition' && definition.operation === 'subscription';
    },
    new GraphQLWsLink(wsClient),
    http,
  );
  return { client: new ApolloClient({ link, cache: new InMemoryCache() }), wsClient };
}

const withTimeout = (promise, what) => Promise.race([
  promise,
  new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), 15000)),
]);

const APPLICATION = gql`query Application($id: UUID!) {
  application(id: $id) { id name mode status openingStatement suggestedQuestions } }`;
const SEND = gql`mutation Send($i: SendMessageInput!) {
  sendMessage(input: $i) { conversation { id title } assistantMessage { id status } } }`;
const STREAM = gql`subscription Stream($m: UUID!, $after: Int) {
  messageStream(messageId: $m, after: $after) { seq kind delta message { id status answer } } }`;
const HISTORY = gql`query History($c: UUID!) {
  conversation(id: $c) { id title messageCount
    messages(first: 20) { edges { node { id role content answer status } } } } }`;
const MINE = gql`query Mine($a: UUID!) {
  endUserConversations(applicationId: $a, first: 10) { totalCount edges { node { id title } } } }`;
const MINT = gql`mutation Mint($i: CreateEndUserTokenInput!) {
  createEndUserToken(input: $i) { token expiresAt endUser { id externalUserId } } }`;

/** The events of one messageStream subscription until it completes. */
function stream(client, messageId) {
  return new Promise((resolve, reject) => {
    const events = [];
    client.subscribe({ query: STREAM, variables: { m: messageId } }).subscribe({
      next: ({ data, error }) => (error ? reject(error) : events.push(data.messageStream)),
      error: reject,
      complete: () => resolve(events),
    });
  });
}
const text = (events) => events.filter((e) => e.kind === 'DELTA').map((e) => e.delta).join('');

// The backend, with the API key: a query, a mutation, a subscription.
const backend = apollo(demoKey);
const { data: app } = await backend.client.query({ query: APPLICATION, variables: { id: demoApp } });
assert.equal(app.application.id, demoApp);
assert.equal(app.application.mode, 'CHAT');
const { data: sent } = await backend.client.mutate({
  mutation: SEND,
  variables: { i: { applicationId: demoApp, query: 'hello from apollo', endUserId: 'apollo-backend' } },
});
const replyEvents = await withTimeout(stream(backend.client, sent.sendMessage.assistantMessage.id), 'apollo subscription');
assert.equal(text(replyEvents), 'Echo: hello from apollo');
assert.equal(replyEvents.at(-1).kind, 'END');
assert.equal(replyEvents.at(-1).message.status, 'COMPLETED');
console.log(`apollo (API key): query, mutation, subscription of ${replyEvents.length} events`);

// The backend mints a token for its user; the browser holds only that token.
const { data: minted } = await backend.client.mutate({
  mutation: MINT,
  variables: { i: { applicationId: demoApp, endUserId: 'apollo-browser-user', ttlSeconds: 600 } },
});
const token = minted.createEndUserToken.token;
assert.equal(minted.createEndUserToken.endUser.externalUserId, 'apollo-browser-user');
assert.ok(!token.startsWith('app-'), 'the token is not the API key');

const browser = apollo(token);
const { data: asked } = await browser.client.mutate({
  mutation: SEND,
  variables: { i: { applicationId: demoApp, query: 'hello from the browser' } },
});
const conversationId = asked.sendMessage.conversation.id;
const browserEvents = await withTimeout(stream(browser.client, asked.sendMessage.assistantMessage.id), 'end-user subscription');
assert.equal(text(browserEvents), 'Echo: hello from the browser');
const { data: history } = await browser.client.query({ query: HISTORY, variables: { c: conversationId }, fetchPolicy: 'network-only' });
assert.equal(history.conversation.messageCount, 2);
const [reply, question] = history.conversation.messages.edges.map((e) => e.node);
assert.equal(question.content, 'hello from the browser');
assert.equal(reply.answer, 'Echo: hello from the browser');
const { data: mine } = await browser.client.query({ query: MINE, variables: { a: demoApp }, fetchPolicy: 'network-only' });
assert.deepEqual(mine.endUserConversations.edges.map((e) => e.node.id), [conversationId]);

// The browser cannot speak for someone else, nor read the backend user's conversation.
await assert.rejects(
  browser.client.mutate({
    mutation: SEND,
    variables: { i: { applicationId: demoApp, query: 'as someone else', endUserId: 'apollo-backend' } },
  }),
  (error) => error.errors?.[0]?.extensions?.code === 'FORBIDDEN',
);
const { data: theirs } = await browser.client.query({
  query: HISTORY, variables: { c: sent.sendMessage.conversation.id }, fetchPolicy: 'network-only',
});
assert.equal(theirs.conversation, null);
console.log('apollo (end-user token): chat, history, own conversations; others refused');

await backend.wsClient.dispose();
await browser.wsClient.dispose();
console.log('apollo client checks passed');
process.exit(0);
