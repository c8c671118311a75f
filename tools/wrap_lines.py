"""Wrap the lines ruff's E501 reports (longer than 100) in the code's own style, touching nothing
else: a break after a comma (else before and/or/if/else/for, else after an opening bracket) inside
brackets, continued at the innermost bracket's visual indent and merged with the next continuation
line when it fits; a long trailing comment moved above its line; a long comment or an overflowing
docstring line reflowed; a long string literal inside brackets split into two adjacent literals; a
long conditional expression parenthesised. Lines carrying ``# type: ignore`` or ``# noqa`` are left
alone (their pragma must stay on the reported line). Every change is checked: the file's AST (with
docstrings compared word by word) must stay the same, or the file is left as it was.

    .venv/bin/python tools/wrap_lines.py $(.venv/bin/ruff check . --select E501 \
        --output-format concise | grep -v '^Found' | cut -d: -f1 | sort -u)

Prints the lines it could not wrap (wrap those by hand). A one-off for turning E501 on; kept to
re-run after merging branches that still have long lines.
"""

from __future__ import annotations

import io
import sys
import tokenize
from pathlib import Path

LIMIT = 100
SOFT_WORDS = {"and", "or", "if", "else", "for"}
PRAGMAS = ("type: ignore", "noqa", "pragma", "fmt:")
# Filled by analyse(): rows that end inside brackets, rows with a top-level and/or/if/else.
OPEN_AT_END: set[int] = set()
TOP_SOFT: set[int] = set()


def analyse(src: str):
    """Per line: a list of (col, kind, indent_col) break candidates, and whether the line ends
    inside a string (we never touch those)."""
    lines = src.splitlines(keepends=True)
    # row → (column, kind, continuation indent, bracket depth) of each place the row may break
    cands: dict[int, list[tuple[int, str, int, int]]] = {}
    stack: list[tuple[int, int, int]] = []  # (row, col, visual indent) of open brackets
    fdepth = 0
    toks = list(tokenize.generate_tokens(io.StringIO(src).readline))
    in_string_rows: set[int] = set()
    global OPEN_AT_END, TOP_SOFT
    OPEN_AT_END = set()
    TOP_SOFT = set()
    for i, tok in enumerate(toks):
        if tok.type == tokenize.NL and stack and not fdepth:
            OPEN_AT_END.add(tok.start[0])
        ttype, text, (srow, scol), (erow, ecol), _ = tok
        if ttype == tokenize.FSTRING_START:
            fdepth += 1
        elif ttype == tokenize.FSTRING_END:
            fdepth -= 1
            for r in range(srow, erow):
                in_string_rows.add(r)
        if ttype == tokenize.STRING and erow > srow:
            for r in range(srow, erow):
                in_string_rows.add(r)
        if fdepth:
            continue
        if ttype == tokenize.OP and text in "([{":
            nxt = toks[i + 1]
            if nxt.type in (tokenize.NL, tokenize.COMMENT) or nxt.start[0] != srow:
                vis = -1  # hanging: use the next line's indent
            else:
                vis = ecol
            stack.append((srow, scol, vis))
            # candidate: break right after the opening bracket (hanging indent)
            if nxt.type not in (tokenize.NL, tokenize.COMMENT) and nxt.start[0] == srow and \
                    not (nxt.type == tokenize.OP and nxt.string in ")]}"):
                cands.setdefault(srow, []).append((ecol, "open", -2, len(stack)))
        elif ttype == tokenize.OP and text in ")]}":
            if stack:
                stack.pop()
        elif stack and ttype == tokenize.OP and text == ",":
            nxt = toks[i + 1]
            if nxt.start[0] == srow and nxt.type not in (tokenize.NL, tokenize.COMMENT):
                cands.setdefault(srow,
                                 []).append((ecol, "comma", _indent(stack, lines, srow),
                                             len(stack)))
        elif not stack and ttype == tokenize.NAME and text in ("and", "or", "if", "else") and \
                toks[i - 1].type not in (tokenize.NEWLINE, tokenize.NL, tokenize.INDENT,
                                         tokenize.DEDENT) \
                and toks[i - 1].start[0] == srow:
            TOP_SOFT.add(srow)
        elif stack and ttype == tokenize.NAME and text in SOFT_WORDS:
            prev = toks[i - 1]
            if prev.end[0] == srow and not (prev.type == tokenize.OP and prev.string in "([{,"):
                cands.setdefault(srow,
                                 []).append((scol, "word", _indent(stack, lines, srow), len(stack)))
    return lines, cands, in_string_rows


def _indent(stack, lines, row):
    brow, bcol, vis = stack[-1]
    if vis >= 0:
        return vis
    # hanging bracket: the indent of the first line after it
    nxt = lines[brow] if brow < len(lines) else ""
    return len(nxt) - len(nxt.lstrip(" "))


def docstring_rows(src: str) -> dict[int, tuple[int, int]]:
    """Rows inside docstrings → (first row, last row) of that docstring."""
    import ast

    rows: dict[int, tuple[int, int]] = {}
    for node in ast.walk(ast.parse(src)):
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body):
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                end = first.end_lineno or first.lineno
                for r in range(first.lineno, end + 1):
                    rows[r] = (first.lineno, end)
    return rows


def comment_cols(src: str) -> dict[int, int]:
    """Rows with code and a trailing comment → the comment's column."""
    out = {}
    prev_row = None
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT and prev_row == tok.start[0]:
            out[tok.start[0]] = tok.start[1]
        if tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT,
                            tokenize.DEDENT):
            prev_row = tok.end[0]
    return out


def _split_words(text: str, width: int) -> list[str]:
    out, cur = [], ""
    for word in text.split(" "):
        if cur and len(cur) + 1 + len(word) > width:
            out.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    out.append(cur)
    return out


def _comment_block(indent: str, text: str) -> list[str]:
    return [f"{indent}# {part}\n" for part in _split_words(text, LIMIT - len(indent) - 2)]


PAREN = __import__("re").compile(
    r"^(\s*)(return |if |elif |while |[A-Za-z_][\w.\[\]\"', ]*(?:: [^=]+)? = )(.+?)(:?)$")
RULER = __import__("re").compile(r"^(\s*# -+ .*? )-+$|^(\s*# )-+$")


def rewrap_comment(lines: list[str], idx: int) -> bool:
    line = lines[idx].rstrip("\n")
    if RULER.match(line):
        lines[idx] = line[:LIMIT] + "\n"
        return True
    indent = line[: len(line) - len(line.lstrip(" "))]
    text = line.lstrip()[1:].strip()
    if not text:
        return False
    nxt = lines[idx + 1].rstrip("\n") if idx + 1 < len(lines) else ""
    nxt_text = nxt.lstrip()[1:].strip() if nxt.lstrip().startswith("#") else ""
    if nxt_text and nxt.startswith(indent + "#") and not RULER.match(nxt) and \
            not nxt_text.startswith(("-", "*")) and len(nxt) - len(nxt.lstrip(" ")) == len(indent):
        parts = _split_words(text + " " + nxt_text, LIMIT - len(indent) - 2)
        lines[idx] = "".join(f"{indent}# {p}\n" for p in parts)
        lines[idx + 1] = ""
    else:
        lines[idx] = "".join(_comment_block(indent, text))
    return True


def reflow_doc(lines: list[str], idx: int, span: tuple[int, int]) -> bool:
    line = lines[idx].rstrip("\n")
    lead = len(line) - len(line.lstrip(" "))
    # the last space that leaves the head within the limit, not inside ``literal``
    cut = -1
    for i in range(min(len(line), LIMIT), lead, -1):
        if (line[i] == " " and line[:i].count("``") % 2 == 0
            and line[:i].strip() not in ('"""', 'r"""')):
            cut = i
            break
    if cut <= lead + 3:
        return False
    head, rest = line[:cut].rstrip(), line[cut + 1:].lstrip()
    first, last = span
    row = idx + 1
    nxt = lines[idx + 1].rstrip("\n") if idx + 1 < len(lines) else ""
    nxt_lead = len(nxt) - len(nxt.lstrip(" "))
    body_lead = lead
    if row < last and nxt.strip() and nxt.strip() not in ('"""',) and nxt_lead == body_lead \
            and not nxt.lstrip().startswith(("- ", "* ", "``",
                                             ">>>")) and not rest.endswith('"""') \
            and not nxt.lstrip()[:3].rstrip(".").isdigit():
        lines[idx] = head + "\n"
        lines[idx + 1] = " " * body_lead + rest + " " + nxt.lstrip() + "\n"
    else:
        lines[idx] = head + "\n" + " " * body_lead + rest + "\n"
    return True


def split_string(lines: list[str], idx: int, src: str) -> bool:
    """Split the string literal that crosses the limit on this line into two adjacent literals
    (implicit concatenation), when it sits inside brackets."""
    row = idx + 1
    line = lines[idx].rstrip("\n")
    toks = list(tokenize.generate_tokens(io.StringIO(src).readline))
    depth = 0
    fstart = None
    for tok in toks:
        if tok.type == tokenize.OP and tok.string in "([{" and fstart is None:
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}" and fstart is None:
            depth -= 1
        if tok.type == tokenize.FSTRING_START:
            fstart = tok
            fparts = []
            continue
        if fstart is not None:
            if tok.type == tokenize.FSTRING_MIDDLE:
                fparts.append(tok)
            if tok.type == tokenize.FSTRING_END:
                start, end = fstart, tok
                fs, fstart = fstart, None
                if start.start[0] != row or end.end[0] != row or depth == 0:
                    continue
                if not (start.start[1] < LIMIT < end.end[1]):
                    continue
                prefix = fs.string
                quote = prefix[-1]
                if prefix.endswith(quote * 3):
                    continue
                spaces = []
                for part in fparts:
                    a, b = part.start[1], part.end[1]
                    if part.start[0] != row or line[a:b] != part.string:
                        continue
                    spaces += [k for k in range(a, b) if line[k] == " " and k + 1 <= LIMIT - 1]
                if not spaces:
                    continue
                k = max(spaces)
                head_body = line[start.end[1]:k + 1]
                tail_body = line[k + 1:end.start[1]]
                hp = prefix if "{" in head_body else prefix.replace("f", "").replace("F", "")
                tp = prefix if "{" in tail_body else prefix.replace("f", "").replace("F", "")
                col = start.start[1]
                lines[idx] = (
                    line[:col] + hp + head_body + quote + "\n" + " " * col + tp + tail_body
                              + line[end.start[1]:] + "\n")
                return True
            continue
        if tok.type == tokenize.STRING and tok.start[0] == row and tok.end[0] == row and depth > 0:
            a, b = tok.start[1], tok.end[1]
            if not (a < LIMIT < b):
                continue
            text = tok.string
            j = 0
            while text[j] not in "'\"":
                j += 1
            prefix, quote = text[:j], text[j]
            if text[j:j + 3] == quote * 3 or "\\" in text:
                continue
            spaces = [k for k in range(a + j + 1, b - 1) if line[k] == " " and k + 1 <= LIMIT - 1]
            if not spaces:
                continue
            k = max(spaces)
            lines[idx] = (
                line[:k + 1] + quote + "\n" + " " * a + prefix + quote + line[k + 1:] + "\n")
            return True
    return False


def wrap_once(src: str) -> tuple[str, list[int]]:
    lines, cands, strings = analyse(src)
    docs = docstring_rows(src)
    comments = comment_cols(src)
    failed = []
    for idx in range(len(lines)):
        row = idx + 1
        line = lines[idx].rstrip("\n")
        if len(line) <= LIMIT:
            continue
        if row in docs:
            if reflow_doc(lines, idx, docs[row]):
                return "".join(lines), []
            failed.append(row)
            continue
        if row in strings:
            failed.append(row)
            continue
        if line.lstrip().startswith("#"):
            if rewrap_comment(lines, idx):
                return "".join(lines), []
            failed.append(row)
            continue
        ccol = comments.get(row)
        if ccol is not None and any(p in line[ccol:] for p in PRAGMAS):
            failed.append(row)  # the pragma must stay on the line mypy or ruff reports
            continue
        if ccol is not None and len(line[:ccol].rstrip()) <= LIMIT:
            lead = len(line) - len(line.lstrip(" "))
            block = _comment_block(" " * lead, line[ccol:][1:].strip())
            lines[idx] = "".join(block) + line[:ccol].rstrip() + "\n"
            return "".join(lines), []
        if row in TOP_SOFT and (row - 1) not in OPEN_AT_END and row not in OPEN_AT_END:
            m = PAREN.match(line)
            if m and "#" not in m.group(3):
                indent, prefix, expr, colon = m.groups()
                lines[idx] = f"{indent}{prefix}({expr}){colon}\n"
                return "".join(lines), []
        options = cands.get(row, [])
        lead = len(line) - len(line.lstrip(" "))
        best = None
        fits = []
        for col, kind, ind, depth in options:
            head = line[:col].rstrip()
            if len(head) > LIMIT or col <= lead:
                continue
            if kind == "open":
                ind = lead + 4 if lead + 4 < col else col
            tail = line[col:].lstrip(" ")
            if not tail or tail.startswith("#"):
                continue
            if ind + len(tail) >= len(line):  # no progress
                continue
            score = depth + {"comma": 0.0, "word": 0.75, "open": 1.5}[kind]
            fits.append(((score, -col), (col, ind, head, tail)))
        if fits:
            best = min(fits)[1]
        if best is None:
            if split_string(lines, idx, src):
                return "".join(lines), []
            m = PAREN.match(line)
            if m and row not in OPEN_AT_END and (row - 1) not in OPEN_AT_END and "#" not in m.group(
                3) \
                    and not m.group(3).startswith("("):
                indent, prefix, expr, colon = m.groups()
                lines[idx] = f"{indent}{prefix}({expr}){colon}\n"
                return "".join(lines), []
            failed.append(row)
            continue
        col, ind, head, tail = best
        nxt = lines[idx + 1] if idx + 1 < len(lines) else ""
        nxt_ind = len(nxt) - len(nxt.lstrip(" "))
        merged = " " * ind + tail + " " + nxt.strip()
        if (row in OPEN_AT_END and "#" not in tail and nxt.strip()
            and not nxt.lstrip().startswith("#")
                and nxt_ind == ind and len(merged) <= LIMIT and (row + 1) not in strings):
            lines[idx] = head + "\n" + merged + "\n"
            lines[idx + 1] = ""
        else:
            lines[idx] = head + "\n" + " " * ind + tail + "\n"
        return "".join(lines), []
    return "".join(lines), failed


def _norm(src: str) -> str:
    import ast

    tree = ast.parse(src)
    for node in ast.walk(tree):
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body):
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                first.value.value = " ".join(first.value.value.split())
    return ast.dump(tree)


def wrap(src: str) -> tuple[str, list[int]]:
    reference = _norm(src)
    failed: list[int] = []
    for _ in range(5000):
        new, failed = wrap_once(src)
        if new == src:
            return src, failed
        try:
            same = _norm(new) == reference
        except SyntaxError:
            same = False
        if not same:
            print("REJECTED a change:",
                  [ln for ln in new.splitlines() if ln not in src.splitlines()][:3])
            return src, failed
        src = new
    return src, failed


def main() -> None:
    for path in sys.argv[1:]:
        src = Path(path).read_text()
        new, failed = wrap(src)
        compile(new, path, "exec")
        if new != src:
            Path(path).write_text(new)
        for row in failed:
            print(f"{path}:{row}: {len(new.splitlines()[row - 1])}")


if __name__ == "__main__":
    main()
