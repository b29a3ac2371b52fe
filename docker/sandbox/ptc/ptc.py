"""Programmatic tool calling, Python: run the model's code with its tools.

    python3 /opt/cip/ptc/ptc.py main.py [args...]

Each tool named in CIP_PTC_TOOLS (lines "python_name<TAB>json_original_name",
made by the proxy) is an `async def name(**kwargs)` returning the decoded
JSON result; a failed tool raises ToolError.  Top-level `await` works, so
`await asyncio.gather(a(), b())` sends both calls in one batch.  The calls
travel as one JSON line on fd 3, the runner's tool link; the process waits,
alive, for the line of results: nothing is replayed.
"""
import ast
import asyncio
import inspect
import json
import os
import sys


class ToolError(RuntimeError):
    """A tool the code called failed; its message is the tool's error."""


_link_in = os.fdopen(3, "rb", buffering=0)
_link_out = os.fdopen(os.dup(3), "wb", buffering=0)
_pending = []
_seq = [0]


def _read_line():
    line = _link_in.readline()
    return line if line.endswith(b"\n") else None


def _decode(value):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _flush():
    batch = list(_pending)
    _pending.clear()
    calls = [{"id": cid, "name": name, "input": args} for cid, name, args, _ in batch]
    _link_out.write(json.dumps({"calls": calls}, separators=(",", ":"), default=str).encode()
                    + b"\n")
    line = _read_line()
    results = {}
    if line:
        for r in json.loads(line).get("results", []):
            results[r.get("call_id")] = r
    for cid, name, _, fut in batch:
        r = results.get(cid)
        if fut.done():
            continue
        if r is None:
            fut.set_exception(ToolError(f"{name}: no result came back"))
        elif r.get("is_error"):
            fut.set_exception(ToolError(r.get("error_message") or f"{name} failed"))
        else:
            fut.set_result(_decode(r.get("result")))


def _tool(original):
    async def call(**kwargs):
        loop = asyncio.get_running_loop()
        _seq[0] += 1
        fut = loop.create_future()
        if not _pending:
            loop.call_soon(_flush)    # after every call already started this turn
        _pending.append((f"call_{_seq[0]:03d}", original, kwargs, fut))
        return await fut
    call.__name__ = original
    return call


def _tools():
    out = {}
    for line in os.environ.get("CIP_PTC_TOOLS", "").splitlines():
        name, _, original = line.partition("\t")
        if name and original:
            out[name] = _tool(json.loads(original))
    return out


def main():
    path = sys.argv[1]
    with open(path, encoding="utf-8") as f:
        source = f.read()
    tools = _tools()
    os.environ.pop("CIP_PTC_TOOLS", None)
    sys.argv = sys.argv[1:]
    code = compile(source, path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    g = {"__name__": "__main__", "__file__": path, "__builtins__": __builtins__,
         "ToolError": ToolError}
    g.update(tools)
    if code.co_flags & inspect.CO_COROUTINE:
        asyncio.run(eval(code, g))
    else:
        exec(code, g)


if __name__ == "__main__":
    main()
