"""Programmatic tool calling, Python: run the model's code with its tools.

    python3 /opt/cip/ptc/ptc.py main.py [args...]

Each tool named in CIP_PTC_TOOLS (lines "python_name<TAB>json_original_name",
made by the proxy) is an `async def name(**kwargs)` returning the decoded
JSON result; a failed tool raises ToolError.  Top-level `await` works, so
`await asyncio.gather(a(), b())` sends both calls in one batch.  The calls
travel as one JSON line on fd 3, the runner's tool link; the process waits,
alive, for the line of results: nothing is replayed.

Code whose only awaits are calls of its tools runs on a small driver of
its own: importing asyncio costs more than the rest of a run (about 80 ms
here).  Any other await, or async def/for/with, gets asyncio.
"""
import ast
import json
import os
import sys

CO_COROUTINE = 0x80


class ToolError(RuntimeError):
    """A tool the code called failed; its message is the tool's error."""


_link_in = os.fdopen(3, "rb")
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


def _round(batch):
    """Send (id, name, args, ...) calls; their results by id."""
    calls = [{"id": b[0], "name": b[1], "input": b[2]} for b in batch]
    _link_out.write(json.dumps({"calls": calls}, separators=(",", ":"), default=str).encode()
                    + b"\n")
    line = _read_line()
    results = {}
    if line:
        for r in json.loads(line).get("results", []):
            results[r.get("call_id")] = r
    return results


def _flush():
    batch = list(_pending)
    _pending.clear()
    try:
        results = _round(batch)
    except Exception as e:      # the link broke: every waiting call fails, none hangs
        for *_, fut in batch:
            if not fut.done():
                fut.set_exception(ToolError(f"tool link: {e}"))
        return
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


class _Call:
    """An awaited tool call, for the small driver: it yields itself."""
    def __init__(self, cid, name, args):
        self.cid, self.name, self.args = cid, name, args

    def __await__(self):
        return (yield self)


def _drive(coro):
    """Run coro, whose every await is a tool call, one call per round."""
    value, error = None, None
    while True:
        try:
            call = coro.throw(error) if error else coro.send(value)
        except StopIteration as done:
            return done.value
        value, error = None, None
        r = _round([(call.cid, call.name, call.args)]).get(call.cid)
        if r is None:
            error = ToolError(f"{call.name}: no result came back")
        elif r.get("is_error"):
            error = ToolError(r.get("error_message") or f"{call.name} failed")
        else:
            value = _decode(r.get("result"))


_light = [False]


def _tool(original):
    async def call(**kwargs):
        _seq[0] += 1
        if _light[0]:
            return await _Call(f"call_{_seq[0]:03d}", original, kwargs)
        import asyncio
        loop = asyncio.get_running_loop()
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


def _only_tool_awaits(tree, tools):
    """1 if every await in tree awaits a direct call of a tool, and nothing else is async."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.AsyncFunctionDef, ast.AsyncFor, ast.AsyncWith)):
            return False
        if isinstance(node, ast.Await):
            v = node.value
            if not (isinstance(v, ast.Call) and isinstance(v.func, ast.Name)
                    and v.func.id in tools):
                return False
    return True


def main():
    path = sys.argv[1]
    with open(path, encoding="utf-8") as f:
        source = f.read()
    tools = _tools()
    os.environ.pop("CIP_PTC_TOOLS", None)
    sys.argv = sys.argv[1:]
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    tree = compile(source, path, "exec", flags=flags | ast.PyCF_ONLY_AST)
    code = compile(tree, path, "exec", flags=flags)
    g = {"__name__": "__main__", "__file__": path, "__builtins__": __builtins__,
         "ToolError": ToolError}
    g.update(tools)
    if not code.co_flags & CO_COROUTINE:
        exec(code, g)
    elif _only_tool_awaits(tree, tools):
        _light[0] = True
        _drive(eval(code, g))
    else:
        import asyncio
        asyncio.run(eval(code, g))


if __name__ == "__main__":
    main()
