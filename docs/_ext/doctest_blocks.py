"""A Griffe extension for the API reference: doctest examples as code blocks.

The package's docstrings hold runnable examples in Keras' style: an `Example:`
line, then `>>>` lines and their outputs at the docstring's own indentation.
Griffe's Google-style parser reads that as plain Markdown (where an output such as
`[[0.0, 1.0]]` reads as a link); this wraps each run of `>>>` lines and outputs,
up to the next blank line, in a ```pycon block. Loaded from mkdocs.yml.
"""

import griffe


def fence_doctests(text):
    """`text` with every doctest block (from `>>>` to a blank line) fenced."""
    out, in_doctest, in_fence, indent = [], False, False, ""
    for line in text.splitlines():
        stripped = line.strip()
        if in_doctest and not stripped:
            out.append(indent + "```")
            in_doctest = False
        if not in_doctest and stripped.startswith("```"):
            in_fence = not in_fence
        elif not in_doctest and not in_fence and stripped.startswith(">>>"):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + "```pycon")
            in_doctest = True
        out.append(line)
    if in_doctest:
        out.append(indent + "```")
    return "\n".join(out)


class DoctestBlocks(griffe.Extension):
    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
