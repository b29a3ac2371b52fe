// End-to-end test: the newest published LibreChat code client,
// @librechat/agents 3.9.2, against code-interpreter-proxy.
//
//   CIP_BASEURL=http://127.0.0.1:PORT/v1 [CIP_KEY=...] node client-test.mjs
//
// The package's real tools (createBashExecutionTool, which LibreChat gives
// the model, and createCodeExecutionTool) run through its real ToolNode, no
// LLM.  What lives in LibreChat's server is reproduced from its source with
// the libraries it uses (axios + form-data): the upload, the freshness check
// whose originalFilename becomes the mount name, the windowed image reader
// of read_file (readSandboxImage), and the download of every output.
// LibreChat current sends X-CodeAPI-Expected-Profile: default on every call.
// 3.9.2 declares Node >= 22; its tools run on Debian's Node 20.
//
// Prints `librechat-client: N passed, M failed` last; exits 1 on any failure.

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BASE = process.env.CIP_BASEURL;
const KEY = process.env.CIP_KEY ?? '';
const USER_ID = process.env.CIP_USER_ID ?? '665f1c2e9b1e8a0012345678';
const PROFILE = { 'X-CodeAPI-Expected-Profile': 'default' };

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
{
  const host = new URL(BASE).hostname;
  if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) {
    console.error(`CIP_BASEURL must point at loopback, not ${host}`);
    process.exit(2);
  }
}
process.env.LIBRECHAT_CODE_BASEURL = BASE;
delete process.env.PROXY;

const agents = await import('@librechat/agents');
const { AIMessage } = await import('@librechat/agents/langchain/messages');
const { default: axios } = await import('axios');
const { default: FormData } = await import('form-data');
const { Constants, ToolNode, createCodeExecutionTool, createBashExecutionTool } = agents;

const agentsVersion = JSON.parse(
  fs.readFileSync(new URL('./node_modules/@librechat/agents/package.json', import.meta.url), 'utf8')
).version;
check('@librechat/agents is 3.9.2', agentsVersion === '3.9.2', `installed: ${agentsVersion}`);

/** LibreChat's getCodeApiAuthHeaders(req) merged with codeExecutionHeaders(). */
const authHeaders = () => ({ ...(KEY ? { 'X-API-Key': KEY } : {}), ...PROFILE });
const http = axios.create({ proxy: false });

function describeAxiosError(e) {
  if (e?.response) {
    let body = e.response.data;
    if (body instanceof ArrayBuffer || Buffer.isBuffer(body)) body = Buffer.from(body).toString();
    return `HTTP ${e.response.status}: ${typeof body === 'string' ? body : JSON.stringify(body)}`;
  }
  return String(e?.stack ?? e);
}

const CSV = 'region,units,price\nnorth,10,2.5\nsouth,4,3.0\neast,7,1.5\n';
const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cip-librechat39-'));
process.on('exit', () => fs.rmSync(tmpDir, { recursive: true, force: true }));

// ----------------------------------------- a. upload, freshness, mount name
/** crud.js uploadCodeEnvFile: kind/id, then `file` (nested names via filepath). */
async function upload(filename, bytes) {
  const form = new FormData();
  form.append('kind', 'user');
  form.append('id', USER_ID);
  const base = path.posix.basename(filename);
  form.append('file', bytes, base === filename ? { filename } : { filename: base, filepath: filename });
  const r = await http.post(`${BASE}/upload`, form, {
    headers: { ...form.getHeaders(), 'Content-Type': 'multipart/form-data',
      'User-Agent': 'LibreChat/1.0', 'User-Id': USER_ID, ...authHeaders() },
    timeout: 120000,
  });
  if (r.data.message !== 'success') throw new Error(`upload: ${r.data.message}`);
  return { storage_session_id: r.data.storage_session_id, file_id: r.data.files[0].fileId,
    filename: r.data.files[0].filename };
}

/** priming.ts getCodeFileInfo: {lastModified, originalFilename}, 5 s. */
async function codeFileInfo(up) {
  const q = new URLSearchParams({ kind: 'user', id: USER_ID });
  const r = await http.get(`${BASE}/sessions/${up.storage_session_id}/objects/${up.file_id}?${q}`,
    { headers: { 'User-Agent': 'LibreChat/1.0', ...authHeaders() }, timeout: 5000 });
  return r.data;
}

/** processCodeOutput: every generated file, arraybuffer, 15 s. */
async function download(sid, fid) {
  const q = new URLSearchParams({ kind: 'user', id: USER_ID });
  const r = await http.get(`${BASE}/download/${sid}/${fid}?${q}`, {
    responseType: 'arraybuffer', timeout: 15000,
    headers: { 'User-Agent': 'LibreChat/1.0', ...authHeaders() },
  });
  return { bytes: Buffer.from(r.data), length: Number(r.headers['content-length']) };
}

let csvUp, nestedUp;
try {
  csvUp = await upload('sales.csv', Buffer.from(CSV));
  nestedUp = await upload('pptx/editing.md', Buffer.from('# editing\n'));
} catch (e) {
  finish(`upload: ${describeAxiosError(e)}`);
}
check('upload: filenames echoed verbatim, nested path kept',
  csvUp.filename === 'sales.csv' && nestedUp.filename === 'pptx/editing.md', { csvUp, nestedUp });
const primed = [];
for (const up of [csvUp, nestedUp]) {
  try {
    const info = await codeFileInfo(up);
    const age = Date.now() - new Date(info.lastModified).getTime();
    check(`freshness of ${up.filename}: fresh, originalFilename is the uploaded path`,
      age >= -120000 && age < 23 * 3600e3 && info.originalFilename === up.filename, info);
    // selectCodeFiles: the mount name is originalFilename.
    primed.push({ id: up.file_id, resource_id: USER_ID, storage_session_id: up.storage_session_id,
      name: info.originalFilename, kind: 'user' });
  } catch (e) {
    check(`freshness of ${up.filename}`, false, describeAxiosError(e));
  }
}

// --------------------------------------------------- the tools, a ToolNode
const params = { user_id: USER_ID, files: primed, authHeaders, executionProfile: 'default',
  codeSessionKey: 'execute_code' };
const bashTool = createBashExecutionTool(params);
const codeTool = createCodeExecutionTool(params);
const sessions = new Map();
sessions.set(Constants.EXECUTE_CODE, { session_id: primed[0]?.storage_session_id, files: primed,
  lastUpdated: Date.now() });
const toolNode = new ToolNode({ tools: [bashTool, codeTool], sessions, handleToolErrors: true });

let seq = 0;
async function runTool(name, args) {
  const id = `call_${++seq}`;
  const ai = new AIMessage({ content: '', tool_calls: [{ id, name, args, type: 'tool_call' }] });
  const out = await toolNode.invoke([ai], { configurable: { run_id: 'cip-e2e-39', thread_id: 't' } });
  const messages = Array.isArray(out) ? out : out?.messages;
  const msg = messages?.find((m) => m?.tool_call_id === id);
  if (!msg) throw new Error(`no ToolMessage for ${id}: ${JSON.stringify(out)}`);
  return msg;
}
const contentOf = (m) => (typeof m.content === 'string' ? m.content : JSON.stringify(m.content));
const generated = (m) => (m.artifact?.files ?? []).filter((f) => !f.inherited);

// ------------------------------- b. bash_tool: python3 heredoc with pandas
const PANDAS = [
  "python3 - <<'EOF'",
  'import os, pandas as pd',
  "df = pd.read_csv('sales.csv')",
  "df['revenue'] = df['units'] * df['price']",
  "os.makedirs('out/sub', exist_ok=True)",
  "df.to_csv('out/sub/summary.csv', index=False)",
  "print(len(df), round(df['revenue'].sum(), 2))",
  "print(open('pptx/editing.md').read().strip())",
  'EOF',
].join('\n');
let m;
try {
  m = await runTool(Constants.BASH_TOOL, { command: PANDAS });
  const text = contentOf(m);
  check('bash_tool heredoc: pandas on the injected CSV, the nested upload mounted by name',
    m.status !== 'error' && text.startsWith('stdout:\n3 47.5\n# editing'), text);
  const out = generated(m).find((f) => f.name === 'out/sub/summary.csv');
  check('bash_tool heredoc: the nested output reported as out/sub/summary.csv', !!out,
    m.artifact);
  if (out) {
    const got = await download(out.storage_session_id ?? m.artifact.session_id, out.id);
    check('nested output downloads with its exact Content-Length',
      got.bytes.toString().startsWith('region,units,price,revenue\nnorth,10,2.5,25.0') &&
        got.length === got.bytes.length, got.bytes.toString());
  }
} catch (e) {
  check('bash_tool heredoc with pandas', false, String(e?.stack ?? e));
}

// ------------------------------------- c. a bare plt.show() gives a PNG
try {
  m = await runTool(Constants.BASH_TOOL, { command: [
    "python3 - <<'EOF'",
    'import matplotlib.pyplot as plt',
    'plt.plot([1, 3, 2])',
    "plt.title('bare show')",
    'plt.show()',
    "print('shown')",
    'EOF',
  ].join('\n') });
  const png = generated(m).find((f) => /^plot_\d+\.png$/.test(f.name));
  check('bash_tool heredoc: bare plt.show() saved a PNG output', m.status !== 'error' && !!png,
    { text: contentOf(m), artifact: m.artifact });
  if (png) {
    const got = await download(png.storage_session_id ?? m.artifact.session_id, png.id);
    check('the plot is a PNG', got.bytes.subarray(0, 8).equals(
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), got.bytes.length);
  }
} catch (e) {
  check('bash_tool heredoc with a bare plt.show()', false, String(e?.stack ?? e));
}

// ---------------------------------------- d. execute_code, a missing input
try {
  m = await runTool(Constants.EXECUTE_CODE, { lang: 'py', code: "print(open('sales.csv').read().splitlines()[0])" });
  check('execute_code (py): the injected CSV is there', contentOf(m).startsWith('stdout:\nregion,units,price'),
    contentOf(m));
  const gone = await codeTool.invoke({ id: 'call_gone', name: Constants.EXECUTE_CODE, type: 'tool_call',
    args: { lang: 'py', code: 'print(1)' },
    _injected_files: [{ id: 'AAAAAAAAAAAAAAAAAAAAA', name: 'gone.csv', kind: 'user',
      storage_session_id: 'BBBBBBBBBBBBBBBBBBBBB', resource_id: USER_ID }] });
  check('a missing input: the 3.9 model reads the reason (not a bare "rejected")',
    contentOf(gone).includes('files[0] (gone.csv) does not exist or has expired'), contentOf(gone));
} catch (e) {
  check('execute_code and a missing input', false, String(e?.stack ?? e));
}

// -------------------- e. read_file's windowed image reader over /exec
// A 150 KB PNG made in the sandbox, then read back as LibreChat's
// readSandboxImage does: one /exec per window, a python3 heredoc printing
// one JSON line, halving the window on top-level status "OL".
let img;
try {
  m = await runTool(Constants.BASH_TOOL, { command: [
    "python3 - <<'EOF'",
    'import numpy as np; from PIL import Image',
    'rng = np.random.default_rng(7)',
    "Image.fromarray(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)).save('noise.png')",
    "import os; print(os.path.getsize('noise.png'))",
    'EOF',
  ].join('\n') });
  img = generated(m).find((f) => f.name === 'noise.png');
  check('a 150 KB PNG made for the image reader', !!img && Number(contentOf(m).split('\n')[1]) > 140000,
    contentOf(m));
} catch (e) {
  check('making the PNG', false, String(e?.stack ?? e));
}

function windowScript(file, offset, size) {
  return [
    "python3 - <<'PY'",
    'import base64, json, os, stat',
    `p = ${JSON.stringify(file)}`,
    'st = os.stat(p)',
    'if not stat.S_ISREG(st.st_mode):',
    "    print(json.dumps({'error': 'not a regular file'}))",
    'else:',
    "    with open(p, 'rb') as f:",
    `        f.seek(${offset}); b = f.read(${size})`,
    "    print(json.dumps({'total': st.st_size, 'n': len(b), 'b64': base64.b64encode(b).decode()}))",
    'PY',
  ].join('\n');
}

if (img) {
  const exec = async (code) => (await http.post(`${BASE}/exec`,
    { lang: 'bash', code, session_id: m.artifact.session_id, files: sessions.get(Constants.EXECUTE_CODE).files },
    { headers: { 'User-Agent': 'LibreChat/1.0', 'Content-Type': 'application/json', ...authHeaders() },
      timeout: 15000 })).data;
  // Start above what 64 KiB of stdout holds, so the OL path is taken.
  let size = 98304, offset = 0, total = Infinity, calls = 0, overflows = 0;
  const parts = [];
  try {
    while (offset < total && calls < 20) {
      calls++;
      const r = await exec(windowScript('noise.png', offset, size));
      if (r.status === 'OL') {
        overflows++;
        size = Math.max(1536, Math.floor(size / 2 / 3) * 3);
        continue;
      }
      const line = r.stdout.trim().split('\n').filter(Boolean).pop();
      const w = JSON.parse(line);
      total = w.total;
      parts.push(Buffer.from(w.b64, 'base64'));
      offset += w.n;
    }
    const read = Buffer.concat(parts);
    const dl = await download(img.storage_session_id ?? m.artifact.session_id, img.id);
    const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
    check('windowed read: status "OL" on overflow made the reader halve its window',
      overflows >= 1, { overflows, calls });
    check(`windowed read: ${calls} /exec calls give the same bytes as the download (SHA-256)`,
      read.length === dl.bytes.length && sha(read) === sha(dl.bytes) && calls <= 20,
      { read: read.length, downloaded: dl.bytes.length, calls });
  } catch (e) {
    check('windowed image read', false, describeAxiosError(e));
  }
}

// ------------------------------------------------ f. Stop: the abort signal
try {
  const metric = async () => {
    const r = await http.get(`${BASE}/metrics`, { headers: authHeaders(), timeout: 5000 });
    const hit = /cip_execs_total\{lang="bash",outcome="cancelled"\} (\d+)/.exec(r.data);
    return hit ? Number(hit[1]) : 0;
  };
  const before = await metric();
  const ac = new AbortController();
  const started = Date.now();
  setTimeout(() => ac.abort(), 1500);
  let threw = false;
  try {
    await bashTool.invoke({ id: 'call_stop', name: Constants.BASH_TOOL, type: 'tool_call',
      args: { command: 'echo started; sleep 30' } }, { signal: ac.signal });
  } catch {
    threw = true;
  }
  let after = before;
  while (after === before && Date.now() - started < 6000) {
    await new Promise((r) => setTimeout(r, 100));
    after = await metric();
  }
  check('Stop: the aborted bash_tool call ends at once', threw || Date.now() - started < 5000);
  check(`Stop: the daemon stopped the run (cancelled ${before} -> ${after}) ` +
    `${Date.now() - started} ms after the start, aborted at 1500 ms`,
    after === before + 1 && Date.now() - started < 3500, { before, after });
} catch (e) {
  check('Stop by abort signal', false, describeAxiosError(e));
}

// ------------------- g. programmatic tool calling, with the real tool objects
// run_tools_with_code and run_tools_with_bash, invoked as ToolNode invokes
// them: the ToolCall carries the toolMap and the tool definitions
// (ToolNode.getProgrammaticTools), and the tools are LangChain tools the
// client runs itself between the rounds.
const { tool: lcTool } = await import('@langchain/core/tools');
const { z } = await import('zod');
const { createProgrammaticToolCallingTool, createBashProgrammaticToolCallingTool } = agents;
const toolRuns = [];
const getWeather = lcTool(async ({ city }) => {
  toolRuns.push(city);
  if (city === 'Atlantis') throw new Error('no such city: Atlantis');
  return JSON.stringify({ city, temp: city.length * 3 });
}, { name: 'get_weather', description: 'The weather of a city',
  schema: z.object({ city: z.string() }) });
const weatherDef = { name: 'get_weather', description: 'The weather of a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };
const ptcParams = { authHeaders, executionProfile: 'default' };
const ptcTool = createProgrammaticToolCallingTool(ptcParams);
const bashPtcTool = createBashProgrammaticToolCallingTool(ptcParams);

/** One PTC call as ToolNode makes it; returns the ToolMessage text. */
async function runPtc(t, code, { tools = [getWeather], defs = [weatherDef], signal } = {}) {
  const msg = await t.invoke({
    id: `call_ptc_${++seq}`, name: t.name, type: 'tool_call', args: { code },
    toolMap: new Map(tools.map((x) => [x.name, x])), toolDefs: defs, programmaticToolName: t.name,
  }, signal ? { signal } : undefined);
  return contentOf(msg);
}

try {
  let text = await runPtc(ptcTool, "r = await get_weather(city='Paris')\nprint(r['temp'])");
  check('run_tools_with_code: one call, the program resumed with its result',
    text.startsWith('stdout:\n15') && toolRuns.join() === 'Paris', { text, toolRuns });
  toolRuns.length = 0;
  text = await runPtc(ptcTool, [
    'import asyncio',
    "a, b = await asyncio.gather(get_weather(city='Oslo'), get_weather(city='Lima'))",
    "print(a['temp'] + b['temp'])",
  ].join('\n'));
  check('run_tools_with_code: two parallel calls in one round', text.startsWith('stdout:\n24') &&
    toolRuns.sort().join() === 'Lima,Oslo', { text, toolRuns });
  text = await runPtc(ptcTool, [
    'try:',
    "    await get_weather(city='Atlantis')",
    'except ToolError as e:',
    "    print('tool failed:', e)",
  ].join('\n'));
  check('run_tools_with_code: a tool error reaches the code as ToolError',
    text.startsWith('stdout:\ntool failed: no such city: Atlantis'), text);
  const many = Array.from({ length: 150 }, (_, i) => lcTool(async () => `t${i}`,
    { name: `tool_${i}`, description: 'n', schema: z.object({}) }));
  text = await runPtc(ptcTool, 'print(await tool_149(), await tool_7())', { tools: many,
    defs: many.map((x) => ({ name: x.name, description: 'n', parameters: { type: 'object', properties: {} } })) });
  check('run_tools_with_code: 150 tools sent, any of them callable', text.startsWith('stdout:\nt149 t7'), text);
  text = await runPtc(bashPtcTool, 'r=$(get_weather \'{"city":"Rome"}\')\necho "bash got $r"');
  check('run_tools_with_bash: one call, compact JSON back to the script',
    text.startsWith('stdout:\nbash got {"city":"Rome","temp":12}'), text);
  text = await runPtc(ptcTool, "open('ptc_out.txt', 'w').write('from ptc')\nprint('wrote')");
  check('run_tools_with_code without tools runs the code as a plain program', text.startsWith('stdout:\nwrote'), text);
} catch (e) {
  check('programmatic tool calling', false, String(e?.stack ?? e));
}

// Stop during a round: the client aborts and calls /exec/programmatic/cancel.
try {
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 1500);
  let threw = false;
  const t0 = Date.now();
  try {
    await runPtc(ptcTool, "import time\ntime.sleep(30)\nprint(await get_weather(city='x'))", { signal: ac.signal });
  } catch {
    threw = true;
  }
  check('PTC Stop: the aborted call ends at once', threw && Date.now() - t0 < 5000, Date.now() - t0);
} catch (e) {
  check('PTC Stop', false, String(e?.stack ?? e));
}

finish();
