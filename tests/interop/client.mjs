// Drives easel-mcp with the official TypeScript MCP SDK client and prints one JSON object of
// facts (no verdicts) on stdout; tests/interop/test_typescript_client.py asserts on it.
//   node client.mjs stdio <command> [args...]   (the server inherits this process's environment)
//   node client.mjs http <url>                   (streamable HTTP, e.g. http://127.0.0.1:PORT/mcp)
//   node client.mjs sse <url>                    (legacy SSE, e.g. http://127.0.0.1:PORT/sse)
// Exits 0 whenever the scenario ran, even if the server misbehaved; non-zero only on a crash.
import { readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';

// stdout carries the JSON and nothing else: anything the SDK might log goes to stderr.
console.log = console.info = console.debug = console.error;

const [mode, target, ...rest] = process.argv.slice(2);
if (!mode || !target) throw new Error('usage: node client.mjs stdio <command> [args...] | http <url> | sse <url>');

function makeTransport() {
  if (mode === 'stdio') return new StdioClientTransport({ command: target, args: rest, env: process.env, stderr: 'inherit' });
  if (mode === 'http') return new StreamableHTTPClientTransport(new URL(target));
  if (mode === 'sse') return new SSEClientTransport(new URL(target));
  throw new Error(`unknown transport ${mode}`);
}

const errText = (e) => `${e?.constructor?.name ?? 'Error'}: ${e?.message ?? String(e)}`;
const sdkPkg = new URL('./node_modules/@modelcontextprotocol/sdk/package.json', import.meta.url);
const out = { transport: mode, sdkVersion: JSON.parse(readFileSync(sdkPkg, 'utf8')).version, clientErrors: [] };

// Each step records its facts under its own key; a step that throws records {error} instead,
// and the scenario goes on.
async function step(name, fn) {
  try { out[name] = await fn(); } catch (e) { out[name] = { error: errText(e) }; }
}

function imageFacts(res) {
  const content = res.content ?? [];
  return {
    isError: res.isError ?? false,
    contentTypes: content.map((c) => c.type),
    resourceLinks: content.filter((c) => c.type === 'resource_link').length,
    imageMimeTypes: content.filter((c) => c.type === 'image').map((c) => c.mimeType),
    text: content.filter((c) => c.type === 'text').map((c) => c.text).join('\n'),
    structuredImages: res.structuredContent?.images?.length ?? null,
    uris: (res.structuredContent?.images ?? []).map((i) => i.uri),
    structuredErrors: res.structuredContent?.errors ?? null,
  };
}

const transport = makeTransport();
// Every incoming message in arrival order, seen before the SDK dispatches it: the client does not
// expose the negotiated protocol version, and it may drop progress that arrives with the response.
const wire = [];
const start = transport.start.bind(transport);
transport.start = async () => {
  const inner = transport.onmessage;
  transport.onmessage = (msg, extra) => { wire.push(msg); inner?.(msg, extra); };
  return start();
};

const client = new Client({ name: 'easel-interop', version: '0.0.0' }, { capabilities: {} });
client.onerror = (e) => out.clientErrors.push(errText(e));
await client.connect(transport);
out.protocolVersion = wire.find((m) => m.result?.protocolVersion)?.result.protocolVersion ?? null;
out.transportProtocolVersion = transport.protocolVersion ?? null;
out.serverVersion = client.getServerVersion() ?? null;

await step('tools', async () => {
  const { tools } = await client.listTools();
  return tools.map((t) => ({ name: t.name, hasOutputSchema: !!t.outputSchema }));
});

let uri;
await step('generate', async () => {
  const progress = [];
  const onprogress = (p) => progress.push({ progress: p.progress, total: p.total ?? null, message: p.message ?? null });
  const facts = { progress };
  const from = wire.length;
  try {
    const res = await client.callTool({ name: 'generate_image', arguments: { prompt: 'a lighthouse', count: 2 } },
      undefined, { onprogress });
    Object.assign(facts, imageFacts(res), { validationError: null });
  } catch (e) {
    facts.validationError = errText(e); // the SDK throws when structuredContent fails the outputSchema
  }
  // What onprogress got, and the progress the server sent before / after its response (wire order).
  facts.progressValues = progress.map((p) => p.progress);
  const seen = wire.slice(from);
  const answered = seen.findIndex((m) => m.id !== undefined && ('result' in m || 'error' in m));
  const sent = (ms) => ms.filter((m) => m.method === 'notifications/progress').map((m) => m.params.progress);
  facts.wireProgressValues = sent(answered < 0 ? seen : seen.slice(0, answered));
  facts.wireProgressAfterResponse = answered < 0 ? null : sent(seen.slice(answered));
  uri = facts.uris?.[0];
  return facts;
});

await step('readImage', async () => {
  const [c] = (await client.readResource({ uri })).contents;
  return { uri: c.uri, mimeType: c.mimeType ?? null, blobBytes: c.blob ? Buffer.from(c.blob, 'base64').length : null };
});

await step('readMetadata', async () => {
  const [c] = (await client.readResource({ uri: `${uri}/metadata` })).contents;
  const meta = JSON.parse(c.text);
  return { uri: c.uri, mimeType: c.mimeType ?? null, prompt: meta.prompt ?? null, userPrompt: meta.user_prompt ?? null };
});

await step('listResources', async () => {
  const r = await client.listResources();
  return { count: r.resources.length, nextCursor: r.nextCursor ?? null };
});

await step('templates', async () => {
  const r = await client.listResourceTemplates();
  return { uriTemplates: r.resourceTemplates.map((t) => t.uriTemplate) };
});

await step('badCount', async () => {
  const res = await client.callTool({ name: 'generate_image', arguments: { prompt: 'x', count: 9 } });
  return { isError: res.isError ?? false, text: (res.content ?? []).map((c) => c.text ?? '').join('\n') };
});

await step('edit', async () => {
  const res = await client.callTool({ name: 'edit_image',
    arguments: { prompt: 'make it blue', images: [uri], model: 'google/nano-banana' } });
  return imageFacts(res);
});

await client.close();
process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(0));
