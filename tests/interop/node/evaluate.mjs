// Evaluate flags through the official Node OpenFeature SDK and OFREP provider.
//
//   node evaluate.mjs AGENT_URL < evaluations.json
//
// stdin: a JSON list of {"flag", "type": "boolean"|"string"|"number"|"object", "default",
// "context"}. stdout: one JSON line {"versions": {...}, "provider": NAME, "results": [...]}
// with one {"value", "variant", "reason", "errorCode", "flagMetadata"} per evaluation, in
// order. Used by tests/agent/test_node_ofrep_interop.py; exits 2 on bad input.
import { readFileSync } from 'node:fs';

import { OFREPProvider } from '@openfeature/ofrep-provider';
import { OpenFeature } from '@openfeature/server-sdk';

function fail(message) {
  process.stderr.write(`evaluate.mjs: ${message}\n`);
  process.exit(2);
}

const baseUrl = process.argv[2];
if (!baseUrl) fail('usage: node evaluate.mjs AGENT_URL < evaluations.json');
let evaluations;
try {
  evaluations = JSON.parse(readFileSync(0, 'utf8'));
} catch (err) {
  fail(`stdin is not JSON: ${err.message}`);
}
if (!Array.isArray(evaluations)) fail('stdin must be a JSON list of evaluations');

const getters = {
  boolean: 'getBooleanDetails',
  string: 'getStringDetails',
  number: 'getNumberDetails',
  object: 'getObjectDetails',
};

await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl }));
const client = OpenFeature.getClient();

const results = [];
for (const [i, e] of evaluations.entries()) {
  const getter = getters[e.type];
  if (!getter) fail(`evaluation ${i}: unknown type ${JSON.stringify(e.type)}`);
  // Sequential on purpose: results stay in request order and the agent sees one at a time.
  const d = await client[getter](e.flag, e.default, e.context ?? {});
  results.push({
    value: d.value,
    variant: d.variant ?? null,
    reason: d.reason ?? null,
    errorCode: d.errorCode ?? null,
    flagMetadata: d.flagMetadata ?? {},
  });
}

const versions = {};
for (const name of ['@openfeature/server-sdk', '@openfeature/ofrep-provider',
  '@openfeature/ofrep-core', '@openfeature/core']) {
  // Read the installed package.json directly: not every package exports it.
  const file = new URL(`node_modules/${name}/package.json`, import.meta.url);
  versions[name] = JSON.parse(readFileSync(file, 'utf8')).version;
}
versions.node = process.versions.node;

process.stdout.write(`${JSON.stringify({
  versions, provider: OpenFeature.providerMetadata.name, results })}\n`);
await OpenFeature.close();
