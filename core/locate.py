"""Which line of a JSON text a JSON pointer points at, so errors in pretty-printed files name their line."""
from __future__ import annotations

import json
import re

_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}:,]|[^\s\[\]{}:,"]+')


def line_of(text: str, pointer: str) -> int | None:
    """1-based line where the value at `pointer` starts (or its nearest existing ancestor); None if unknown."""
    target = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]] if pointer else []
    best: int | None = None
    stack: list[list] = []          # [kind, key or index, expecting_key]
    path: list[str] = []
    line = 1
    last = 0
    for m in _TOKENS.finditer(text):
        line += text.count("\n", last, m.start())
        last = m.start()
        tok = m.group()
        top = stack[-1] if stack else None
        if top is not None and top[0] == "{" and top[2]:
            if tok.startswith('"'):
                try:
                    top[1] = json.loads(tok)
                except ValueError:
                    top[1] = tok.strip('"')
                continue
            if tok == ":":
                top[2] = False
                current = path + [top[1]]
                if current == target[:len(current)]:
                    best = line
                    if len(current) == len(target):
                        return line
                continue
        if tok in "{[":
            if top is not None and top[0] == "[":
                current = path + [str(top[1])]
                if current == target[:len(current)]:
                    best = line
                    if len(current) == len(target):
                        return line
            if top is not None:
                path.append(str(top[1]))
            elif not target:
                return line
            stack.append([tok, 0 if tok == "[" else None, tok == "{"])
            if best is None and not path:
                best = line
        elif tok in "}]":
            if stack:
                stack.pop()
            if path:
                path.pop()
        elif tok == ",":
            if top is not None:
                if top[0] == "[":
                    top[1] += 1
                else:
                    top[2] = True
        elif top is not None and top[0] == "[":
            current = path + [str(top[1])]
            if current == target:
                return line
    return best
