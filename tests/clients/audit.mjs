// The GraphQL over HTTP audit of graphql-http against a running Weft:
//   WEFT_URL=http://127.0.0.1:8080 node audit.mjs
// Every MUST passes, and at least 22 of the 23 SHOULD.
import { auditServer } from 'graphql-http';

const base = process.env.WEFT_URL ?? 'http://127.0.0.1:8080';
const results = await auditServer({ url: `${base}/graphql` });
const must = results.filter((r) => r.name.startsWith('MUST'));
const should = results.filter((r) => r.name.startsWith('SHOULD'));
const passed = (list) => list.filter((r) => r.status === 'ok');
for (const r of results.filter((r) => r.status !== 'ok')) {
  const kind = r.name.startsWith('MAY') ? 'optional, not taken' : 'NOT MET';
  console.log(`  ${kind}: ${r.name}: ${r.reason}`);
}
console.log(`graphql-http audit: MUST ${passed(must).length}/${must.length}, SHOULD ${passed(should).length}/${should.length}`);
if (passed(must).length !== must.length || passed(should).length < 22) {
  console.error('the GraphQL over HTTP audit is below what Weft keeps to');
  process.exit(1);
}
