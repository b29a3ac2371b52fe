// End-to-end test: LibreChat's own code-interpreter client code
// (@librechat/agents, pinned at 3.2.21) against code-interpreter-proxy.
//
//   CIP_BASEURL=http://127.0.0.1:PORT/v1 [CIP_KEY=...] node client-test.mjs
//
// What runs here is the package's real code: createCodeExecutionTool and
// createBashExecutionTool (HTTP to <base>/exec), driven by the package's
// real ToolNode without an LLM, so the artifact -> session map ->
// `_injected_files` hand-off between calls is the library's own.  The
// parts that live in LibreChat's server (not in this package) are
// reproduced from its source with the same libraries it uses (axios +
// form-data): the upload (crud.js uploadCodeEnvFile), the freshness check
// (process.js getSessionInfo), the seeding of the run's session map with
// the primed files (codeFilesSession.ts -> Run initialSessions), and the
// download of every generated file (process.js processCodeOutput).
//
// CIP_KEY: when set, it is sent as X-API-Key through the tools' `authHeaders`
// hook (the only way 3.2.21 sends any auth header) and on the axios calls.
// LibreChat itself never sends X-API-Key with 3.2.21 (its getCodeApiAuthHeaders
// returns a Bearer JWT or nothing), so the faithful setup is an unset CIP_KEY
// and a daemon run with CI_AUTH=none.
//
// Prints `librechat-client: N passed, M failed` last; exits 1 on any failure.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';

const BASE = process.env.CIP_BASEURL;
const KEY = process.env.CIP_KEY ?? '';
const USER_ID = process.env.CIP_USER_ID ?? '665f1c2e9b1e8a0012345678';

let passed = 0;
let failed = 0;

function check(name, ok, detail) {
  if (ok) {
    passed++;
    console.log(`ok   ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name}`);
    if (detail !== undefined) {
      const text = typeof detail === 'string' ? detail : JSON.stringify(detail, null, 2);
      console.log(text.replace(/^/gm, '     '));
    }
  }
  return ok;
}

function finish(extra) {
  if (extra) {
    failed++;
    console.log(`FAIL ${extra}`);
  }
  console.log(`librechat-client: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

if (!BASE) {
  console.error('CIP_BASEURL is required, e.g. http://127.0.0.1:8000/v1');
  process.exit(2);
}
// Never talk to anything but loopback.
{
  const host = new URL(BASE).hostname;
  if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) {
    console.error(`CIP_BASEURL must point at loopback, not ${host}`);
    process.exit(2);
  }
}

// The executors read LIBRECHAT_CODE_BASEURL once, when their module loads
// (CodeExecutor.ts: `const baseEndpoint = getCodeBaseURL()`), and route
// through an HttpsProxyAgent when PROXY is set: fix both before importing.
process.env.LIBRECHAT_CODE_BASEURL = BASE;
delete process.env.PROXY;

const agents = await import('@librechat/agents');
const { AIMessage } = await import('@librechat/agents/langchain/messages');
const { default: axios } = await import('axios');
const { default: FormData } = await import('form-data');
const {
  Constants,
  ToolNode,
  getCodeBaseURL,
  createCodeExecutionTool,
  createBashExecutionTool,
} = agents;

const agentsVersion = JSON.parse(
  fs.readFileSync(new URL('./node_modules/@librechat/agents/package.json', import.meta.url), 'utf8')
).version;
check('@librechat/agents is 3.2.21', agentsVersion === '3.2.21', `installed: ${agentsVersion}`);
check('the client took LIBRECHAT_CODE_BASEURL', getCodeBaseURL() === BASE, getCodeBaseURL());

/** LibreChat's getCodeApiAuthHeaders(req): `{}` unless a JWT is configured. */
const authHeaders = () => (KEY ? { 'X-API-Key': KEY } : {});

/** axios as LibreChat's server uses it (never through an env proxy). */
const http = axios.create({ proxy: false });

function describeAxiosError(e) {
  if (e?.response) {
    let body = e.response.data;
    if (body instanceof ArrayBuffer || Buffer.isBuffer(body)) body = Buffer.from(body).toString();
    return `HTTP ${e.response.status}: ${typeof body === 'string' ? body : JSON.stringify(body)}`;
  }
  return String(e?.stack ?? e);
}

// ---------------------------------------------------------------- fixtures
const CSV = 'region,units,price\nnorth,10,2.5\nsouth,4,3.0\neast,7,1.5\n';
const CSV_MODIFIED =
  'region,units,price,revenue\nnorth,10,2.5,25.0\nsouth,4,3.0,12.0\neast,7,1.5,10.5\n';
const NOTES = 'quarterly notes: keep me\n';

const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cip-librechat-'));
process.on('exit', () => fs.rmSync(tmpDir, { recursive: true, force: true }));
const csvPath = path.join(tmpDir, 'sales.csv');
fs.writeFileSync(csvPath, CSV);

// ------------------------------------------------- a. upload like LibreChat
/**
 * LibreChat crud.js uploadCodeEnvFile + packages/api appendCodeEnvFileIdentity
 * / appendCodeEnvFile: kind/id fields, then the `file` part (nested names via
 * form-data's `filepath`); headers from form.getHeaders(), then a bare
 * 'Content-Type: multipart/form-data' (axios puts the boundary back for a
 * form-data body), User-Agent, User-Id, auth; 120 s timeout.
 */
async function uploadCodeEnvFile({ stream, filename, kind = 'user', id = USER_ID }) {
  const form = new FormData();
  form.append('kind', kind);
  form.append('id', id);
  const normalized = filename.replace(/\\/g, '/');
  const basename = path.posix.basename(normalized);
  form.append(
    'file',
    stream,
    normalized === basename ? { filename } : { filename: basename, filepath: normalized }
  );
  const response = await http.post(`${getCodeBaseURL()}/upload`, form, {
    headers: {
      ...form.getHeaders(),
      'Content-Type': 'multipart/form-data',
      'User-Agent': 'LibreChat/1.0',
      'User-Id': USER_ID,
      ...authHeaders(),
    },
    timeout: 120000,
    maxContentLength: 150 * 1024 * 1024,
    maxBodyLength: 150 * 1024 * 1024,
  });
  const result = response.data;
  if (result.message !== 'success') {
    throw new Error(`Error uploading file: ${result.message}`);
  }
  return {
    storage_session_id: result.storage_session_id,
    file_id: result.files[0].fileId,
    filename: result.files[0].filename,
    raw: result,
  };
}

/** LibreChat process.js getSessionInfo (current): reads only lastModified. */
async function getSessionInfo(ref) {
  const query = new URLSearchParams({ kind: 'user', id: USER_ID });
  const response = await http.get(
    `${getCodeBaseURL()}/sessions/${ref.storage_session_id}/objects/${ref.file_id}?${query}`,
    { headers: { 'User-Agent': 'LibreChat/1.0', ...authHeaders() }, timeout: 5000 }
  );
  return response.data?.lastModified;
}

/** LibreChat process.js processCodeOutput: one GET per generated file. */
async function downloadCodeOutput(sessionId, fileId) {
  const query = new URLSearchParams({ kind: 'user', id: USER_ID });
  const response = await http({
    method: 'get',
    url: `${getCodeBaseURL()}/download/${sessionId}/${fileId}?${query}`,
    responseType: 'arraybuffer',
    headers: { 'User-Agent': 'LibreChat/1.0', ...authHeaders() },
    timeout: 15000,
  });
  return Buffer.from(response.data);
}

const ID_RE = /^[A-Za-z0-9_-]{21}$/;
let csvUp;
let notesUp;
try {
  // A file in LibreChat's local storage is an fs.ReadStream (known length);
  // one from S3/Azure/a transform is a plain Readable, which form-data cannot
  // measure, so axios sends it with Transfer-Encoding: chunked.
  csvUp = await uploadCodeEnvFile({ stream: fs.createReadStream(csvPath), filename: 'sales.csv' });
  notesUp = await uploadCodeEnvFile({
    stream: Readable.from([Buffer.from(NOTES)]),
    filename: 'data/notes.txt',
  });
} catch (e) {
  finish(`upload as LibreChat sends it: ${describeAxiosError(e)}`);
}
check('upload (fs stream, Content-Length): current-era response', 
  ID_RE.test(csvUp.storage_session_id ?? '') && ID_RE.test(csvUp.file_id ?? '') &&
    csvUp.filename === 'sales.csv', csvUp.raw);
check('upload (plain Readable, chunked, nested filepath): name kept',
  ID_RE.test(notesUp.storage_session_id ?? '') && notesUp.filename === 'data/notes.txt' &&
    notesUp.storage_session_id !== csvUp.storage_session_id, notesUp.raw);

for (const up of [csvUp, notesUp]) {
  try {
    const lastModified = await getSessionInfo(up);
    const age = Date.now() - new Date(lastModified).getTime();
    check(`freshness check of ${up.filename}: lastModified under 23 h (reused, not re-uploaded)`,
      typeof lastModified === 'string' && age >= -120000 && age < 23 * 3600 * 1000, { lastModified });
  } catch (e) {
    check(`freshness check of ${up.filename}`, false, describeAxiosError(e));
  }
}

/** primeFiles' current-era ref for a user attachment. */
const toRef = (up) => ({
  id: up.file_id,
  resource_id: USER_ID,
  storage_session_id: up.storage_session_id,
  name: up.filename,
  kind: 'user',
});
const primedFiles = [toRef(csvUp), toRef(notesUp)];

// ------------------------------------------- the run: tools and a ToolNode
// handleTools.js: createCodeExecutionTool({ user_id, files, authHeaders, ... })
const toolParams = { user_id: USER_ID, files: primedFiles, authHeaders };
const codeTool = createCodeExecutionTool(toolParams);
const bashTool = createBashExecutionTool(toolParams);

/** Record what ToolNode hands each tool (the `_injected_files` it computed). */
const seen = [];
for (const t of [codeTool, bashTool]) {
  const invoke = t.invoke.bind(t);
  t.invoke = (input, config) => {
    seen.push({ name: t.name, session_id: input?.session_id, injected: input?._injected_files });
    return invoke(input, config);
  };
}

// Run({ initialSessions }) <- buildInitialToolSessions/seedCodeFilesIntoSessions:
// the primed files seed the shared `execute_code` entry of Graph.sessions.
const sessions = new Map();
sessions.set(Constants.EXECUTE_CODE, {
  session_id: primedFiles[0].storage_session_id,
  files: primedFiles,
  lastUpdated: Date.now(),
});
const toolNode = new ToolNode({ tools: [codeTool, bashTool], sessions, handleToolErrors: true });

let callSeq = 0;
/** One model turn with one tool call, through the package's ToolNode. */
async function runTool(name, args) {
  const id = `call_${++callSeq}`;
  const ai = new AIMessage({ content: '', tool_calls: [{ id, name, args, type: 'tool_call' }] });
  const out = await toolNode.invoke([ai], { configurable: { run_id: 'cip-e2e-run', thread_id: 'cip-e2e' } });
  const messages = Array.isArray(out) ? out : out?.messages;
  const msg = messages?.find((m) => m?.tool_call_id === id);
  if (!msg) throw new Error(`ToolNode returned no ToolMessage for ${id}: ${JSON.stringify(out)}`);
  return { msg, call: seen[seen.length - 1] };
}
const codeSession = () => sessions.get(Constants.EXECUTE_CODE);
const contentOf = (msg) => (typeof msg.content === 'string' ? msg.content : JSON.stringify(msg.content));
const sameRef = (a, b) => a.id === b.id && a.storage_session_id === b.storage_session_id;

// ------------------------------- b. execute_code (py) with the files injected
const PY = [
  'import pandas as pd',
  'import matplotlib.pyplot as plt',
  "df = pd.read_csv('sales.csv')",
  "df['revenue'] = df['units'] * df['price']",
  "df.to_csv('sales.csv', index=False)",
  "plt.bar(df['region'], df['revenue'])",
  "plt.title('Revenue by region')",
  'plt.show()',
  "print(f\"rows={len(df)} total_revenue={df['revenue'].sum():.2f}\")",
  "print(open('data/notes.txt').read().strip())",
].join('\n');

let r1;
try {
  r1 = await runTool(Constants.EXECUTE_CODE, { lang: 'py', code: PY });
} catch (e) {
  finish(`execute_code (py) through ToolNode threw: ${e?.stack ?? e}`);
}
const text1 = contentOf(r1.msg);
const art1 = r1.msg.artifact ?? {};
if (process.env.CIP_VERBOSE) console.log(JSON.stringify({ text1, art1 }, null, 2));
const files1 = art1.files ?? [];
check('py call: ToolNode injected both primed refs as _injected_files',
  Array.isArray(r1.call.injected) && r1.call.injected.length === 2 &&
    primedFiles.every((p) => r1.call.injected.some((f) =>
      sameRef(f, p) && f.name === p.name && f.kind === 'user' && f.resource_id === USER_ID)),
  r1.call.injected);
check('py call: tool message is a success', r1.msg.status !== 'error', text1);
check('py call: stdout shown to the model',
  text1.startsWith('stdout:\nrows=3 total_revenue=47.50\nquarterly notes: keep me\n'), text1);
check('py call: no stderr', !text1.includes('\nstderr:\n'), text1);

const generated1 = files1.filter((f) => f.inherited !== true);
const newCsv = generated1.find((f) => f.name === 'sales.csv');
const plot = generated1.find((f) => f.name === 'plot_0.png');
check('py call: artifact carries the exec session id', ID_RE.test(art1.session_id ?? ''), art1);
check('py call: modified CSV reported with a new id and the same name',
  newCsv != null && newCsv.id !== csvUp.file_id && ID_RE.test(newCsv.id), files1);
check('py call: plt.show() produced plot_0.png', plot != null, files1);
check('py call: nothing else generated (no main.py, no unchanged input)',
  generated1.length === 2, generated1);
check('py call: generated files live in the exec bucket',
  generated1.every((f) => (f.storage_session_id ?? art1.session_id) === art1.session_id), generated1);
const notesEcho = files1.find((f) => f.name === 'data/notes.txt');
check('py call: the unchanged input is echoed only as inherited (original id and bucket)',
  notesEcho == null || (notesEcho.inherited === true && notesEcho.id === notesUp.file_id &&
    notesEcho.storage_session_id === notesUp.storage_session_id), notesEcho);
check('py call: the original CSV is not echoed as inherited (it changed)',
  !files1.some((f) => f.id === csvUp.file_id), files1);
check('py call: summary counts only generated files (2 files, 1 image)',
  text1.includes('Session files: 2 persisted file(s) are available in /mnt/data, including 1 image(s).'),
  text1);

// ------------------------------- c. download like processCodeOutput does
for (const f of generated1) {
  const sid = f.storage_session_id ?? art1.session_id;
  let bytes;
  try {
    bytes = await downloadCodeOutput(sid, f.id);
  } catch (e) {
    check(`download ${f.name}`, false, describeAxiosError(e));
    continue;
  }
  if (f.name.endsWith('.png')) {
    check(`download ${f.name}: PNG bytes`,
      bytes.length > 1000 && bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
      `${bytes.length} bytes: ${bytes.subarray(0, 16).toString('hex')}`);
  } else if (f.name === 'sales.csv') {
    check('download sales.csv: the modified content', bytes.toString() === CSV_MODIFIED, bytes.toString());
  } else {
    check(`download ${f.name}`, bytes.length > 0);
  }
}
// LibreChat stores each output with codeEnvRef {storage_session_id, file_id};
// the next turn's primeFiles checks it with getSessionInfo before reusing it.
for (const f of generated1) {
  const ref = { storage_session_id: f.storage_session_id ?? art1.session_id, file_id: f.id, filename: f.name };
  try {
    const lastModified = await getSessionInfo(ref);
    const age = Date.now() - new Date(lastModified).getTime();
    check(`freshness check of output ${f.name}: lastModified under 23 h`,
      typeof lastModified === 'string' && age >= -120000 && age < 23 * 3600 * 1000, { lastModified });
  } catch (e) {
    check(`freshness check of output ${f.name}`, false, describeAxiosError(e));
  }
}
// The upload itself must still be served unchanged.
try {
  const orig = await downloadCodeOutput(csvUp.storage_session_id, csvUp.file_id);
  check('download of the original upload: unchanged', orig.toString() === CSV, orig.toString());
} catch (e) {
  check('download of the original upload', false, describeAxiosError(e));
}

// ToolNode's session map after the call: newest sales.csv replaced the primed one.
{
  const s = codeSession();
  const byName = new Map((s?.files ?? []).map((f) => [f.name, f]));
  check('session map after py call: sales.csv is the new one, plot and notes tracked',
    s?.session_id === art1.session_id && byName.size === (s?.files ?? []).length &&
      newCsv != null && byName.get('sales.csv')?.id === newCsv.id &&
      byName.has('plot_0.png') && byName.get('data/notes.txt')?.id === notesUp.file_id,
    s);
}

// ------------------------- d. bash_tool sees the files carried over by ToolNode
let r2;
try {
  r2 = await runTool(Constants.BASH_TOOL, { command: 'cat sales.csv && ls -1 . data' });
} catch (e) {
  finish(`bash_tool through ToolNode threw: ${e?.stack ?? e}`);
}
const text2 = contentOf(r2.msg);
const injected2 = r2.call.injected ?? [];
check('bash call: _injected_files carry the modified CSV, not the upload',
  newCsv != null && injected2.some((f) => f.name === 'sales.csv' && f.id === newCsv.id &&
    f.storage_session_id === (newCsv.storage_session_id ?? art1.session_id)) &&
    !injected2.some((f) => f.id === csvUp.file_id),
  injected2);
check('bash call: _injected_files carry the plot and the untouched notes',
  injected2.some((f) => f.name === 'plot_0.png') &&
    injected2.some((f) => f.name === 'data/notes.txt' && f.id === notesUp.file_id &&
      f.storage_session_id === notesUp.storage_session_id),
  injected2);
check('bash call: success', r2.msg.status !== 'error', text2);
check('bash call: cat shows the modified CSV', text2.startsWith(`stdout:\n${CSV_MODIFIED}`), text2);
{
  const listing = text2.split('\n');
  check('bash call: ls lists the carried files',
    ['plot_0.png', 'sales.csv', 'notes.txt', 'data:'].every((n) => listing.includes(n)), text2);
}
check('bash call: nothing new generated (no summary, only inherited echoes)',
  !text2.includes('Generated files:') &&
    (r2.msg.artifact?.files ?? []).every((f) => f.inherited === true),
  { text: text2, artifact: r2.msg.artifact });

// ------------------------------------------- e. js, ts, rs, and an error
let r3;
try {
  r3 = await runTool(Constants.EXECUTE_CODE, {
    lang: 'js',
    code: "const fs = require('fs');\n" +
      "const header = fs.readFileSync('sales.csv', 'utf8').split('\\n')[0];\n" +
      'console.log(JSON.stringify({ sum: [1, 2, 3].reduce((a, b) => a + b), header }));',
  });
  const text3 = contentOf(r3.msg);
  check('js call: stdout shown, injected CSV readable',
    r3.msg.status !== 'error' &&
      text3 === 'stdout:\n{"sum":6,"header":"region,units,price,revenue"}', text3);
} catch (e) {
  check('js call', false, String(e?.stack ?? e));
}

// TypeScript and Rust, which the client offers the model: they run too.
for (const [lang, code, want] of [
  ['ts', "import * as fs from 'fs';\n" +
    "const header: string = fs.readFileSync('sales.csv', 'utf8').split('\\n')[0];\n" +
    'console.log(header.split(",").length);', 'stdout:\n4'],
  ['rs', 'fn main() { let v: Vec<u32> = (1..=4).collect(); println!("{}", v.iter().sum::<u32>()); }',
    'stdout:\n10'],
]) {
  try {
    const r = await runTool(Constants.EXECUTE_CODE, { lang, code });
    const text = contentOf(r.msg);
    check(`${lang} call: runs, output shown`, r.msg.status !== 'error' && text === want, text);
  } catch (e) {
    check(`${lang} call`, false, String(e?.stack ?? e));
  }
}

// A file ref to nothing stored is the model's to fix: the daemon answers
// 200 with the reason in stderr, which the client shows the model (a 4xx
// body reaches a current client's model only as "rejected").
try {
  const gone = await codeTool.invoke({
    id: 'call_direct', name: Constants.EXECUTE_CODE, type: 'tool_call',
    args: { lang: 'py', code: 'print(1)' },
    _injected_files: [{ id: 'AAAAAAAAAAAAAAAAAAAAA', name: 'gone.csv', kind: 'user',
      storage_session_id: 'BBBBBBBBBBBBBBBBBBBBB', resource_id: USER_ID }],
  });
  const t = contentOf(gone);
  check('missing input file: the model reads the reason in stderr, nothing ran',
    gone.status !== 'error' && t.includes('stdout: Empty.') &&
      t.includes('stderr:\nfiles[0] (gone.csv) does not exist or has expired'), t);
} catch (e) {
  check('missing input file: no exception', false, String(e?.stack ?? e));
}

// ------------------- f. a run over 5 s right after a freshness check
// LibreChat's axios calls (timeout 5000 on the freshness check) and the
// tools' node-fetch share Node's global keep-alive agent.  Were the
// freshness check's socket reused for the next /exec, axios's 5 s socket
// timeout would still be on it and a longer run would end in "socket hang
// up".  The daemon closes every connection after its response, so it is not.
try {
  await getSessionInfo(csvUp);
  const long = await runTool(Constants.EXECUTE_CODE,
    { lang: 'py', code: "import time\ntime.sleep(6)\nprint('slept')" });
  check('a 6 s run right after a freshness check succeeds',
    long.msg.status !== 'error' && contentOf(long.msg).includes('slept'), contentOf(long.msg));
} catch (e) {
  check('a 6 s run right after a freshness check succeeds', false, describeAxiosError(e));
}

// With a key configured, the authHeaders hook is what carries it: without it
// the daemon must refuse, and the tool surfaces the status.
if (KEY) {
  const noAuth = createCodeExecutionTool({ user_id: USER_ID });
  try {
    await noAuth.invoke({ id: 'call_noauth', name: Constants.EXECUTE_CODE, type: 'tool_call',
      args: { lang: 'py', code: 'print(1)' } });
    check('no authHeaders against a keyed daemon: refused', false, 'the call succeeded');
  } catch (e) {
    const m = String(e?.message ?? e);
    check('no authHeaders against a keyed daemon: 401 surfaced', m.includes(' returned 401'), m);
  }
}


// ------------------- programmatic tool calling, with 3.2.21's tool objects
// 3.2.21 sends only the tools whose names appear in the code.
{
  const { tool: lcTool } = await import('@langchain/core/tools');
  const { z } = await import('zod');
  const runs = [];
  const getWeather = lcTool(async ({ city }) => {
    runs.push(city);
    if (city === 'Atlantis') throw new Error('no such city: Atlantis');
    return JSON.stringify({ city, temp: city.length * 3 });
  }, { name: 'get_weather', description: 'The weather of a city', schema: z.object({ city: z.string() }) });
  const defs = [{ name: 'get_weather', description: 'The weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];
  const ptcTool = agents.createProgrammaticToolCallingTool({ authHeaders });
  const bashPtc = agents.createBashProgrammaticToolCallingTool({ authHeaders });
  const ptcRun = async (t, code) => contentOf(await t.invoke({
    id: `call_${++callSeq}`, name: t.name, type: 'tool_call', args: { code },
    toolMap: new Map([[getWeather.name, getWeather]]), toolDefs: defs }));
  try {
    let t = await ptcRun(ptcTool, "r = await get_weather(city='Paris')\nprint(r['temp'])");
    check('3.2.21 run_tools_with_code: one call', t.startsWith('stdout:\n15') && runs.join() === 'Paris', { t, runs });
    t = await ptcRun(ptcTool, "import asyncio\nrs = await asyncio.gather(get_weather(city='Oslo'), get_weather(city='Lima'))\nprint(sum(r['temp'] for r in rs))");
    check('3.2.21 run_tools_with_code: two parallel calls', t.startsWith('stdout:\n24'), t);
    t = await ptcRun(ptcTool, "try:\n    await get_weather(city='Atlantis')\nexcept ToolError as e:\n    print('failed:', e)");
    check('3.2.21 run_tools_with_code: a tool error as ToolError', t.startsWith('stdout:\nfailed: no such city: Atlantis'), t);
    t = await ptcRun(bashPtc, 'echo "bash $(get_weather \'{"city":"Rome"}\')"');
    check('3.2.21 run_tools_with_bash: one call', t.startsWith('stdout:\nbash {"city":"Rome","temp":12}'), t);
  } catch (e) {
    check('3.2.21 programmatic tool calling', false, String(e?.stack ?? e));
  }
}

finish();
