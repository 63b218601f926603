"""A griffe extension that lets the reference render warmrtc's docstrings as they are written.

- Sphinx roles (``:class:`~warmrtc.budget.Lease```, ``:func:`watch```) become links to the
  public name in the reference (``warmrtc.Lease``) when the target is public, and inline code
  otherwise (a private module, a module constant). A role whose target does not exist is a
  warning, so ``mkdocs build --strict`` fails on it.
- A field's trailing comment (``frames_sent: int  # handed to WebRTC``), or the comment lines
  right above it, is its docstring when it has none: the dataclasses of the public API document
  their fields that way.
- A parameter whose name starts with an underscore (``VideoSource(..., _fused=True)``, kept
  for measurements) is left out of the signature, as private members are left out.
- A dataclass's fields are listed in its docstring's Attributes section (name, type, what it
  is), one line each, instead of a heading each: the value types have many fields.
- A default that names a module constant (``model=DEFAULT_MODEL``) shows the constant's value;
  an attribute set from an expression in ``__init__`` (``self.max_idle = float(max_idle)``)
  shows its type alone, not the expression.
- The blocking twins (``BlockingSession`` ...) declare the names they share with their async
  class as ``_Same()`` descriptors and ``_blocking(Session.method)``; here each becomes what it
  is at run time, with the async member's signature and docstring.

Used by mkdocs.yml (mkdocstrings' python handler, ``extensions``, after griffe's dataclasses
extension, which makes each dataclass's ``__init__`` from its fields); it changes nothing at run
time.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from typing import Any

import griffe

log = griffe.logger

PACKAGE = "warmrtc"
ROLE = re.compile(r":(?:py:)?(class|func|meth|mod|attr|data|exc|obj):`(~?)([\w.]+)`")
BLOCKING_NOTE = "(Blocks the calling thread until done.)"
# Rendered in the reference though not in ``warmrtc.__all__`` (by their module's path).
ALSO_RENDERED = ("warmrtc.stats.ConnectStep",)


class WarmrtcDocs(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != PACKAGE:
            return
        objects = list(_walk(pkg))
        for obj in objects:
            if isinstance(obj, griffe.Class):
                _twin_members(obj)
        public = _public_paths(pkg)
        for obj in list(_walk(pkg)):
            if isinstance(obj, griffe.Attribute) and not obj.docstring:
                _comment_as_docstring(obj)
            if isinstance(obj, griffe.Function) and _is_rendered(obj, public):
                _hide_private_parameters(obj)
                _constant_defaults(obj)
            if isinstance(obj, griffe.Attribute) and _is_rendered(obj, public):
                _literal_value_only(obj)
        for obj in list(_walk(pkg)):
            if isinstance(obj, griffe.Class) and "dataclass" in obj.labels:
                _fields_as_section(obj)
            if obj.docstring:
                obj.docstring.value = _roles(obj, obj.docstring.value, pkg, public)


def _walk(obj: griffe.Object) -> Any:
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)  # type: ignore[arg-type]


def _public_paths(pkg: griffe.Module) -> dict[str, str]:
    """Canonical path -> the path the reference renders it under (``warmrtc.<name>``)."""
    public = {}
    for name in pkg.exports or ():
        member = pkg.members.get(str(name))
        if member is not None:
            public[member.canonical_path] = f"{PACKAGE}.{name}"
    public.update((path, path) for path in ALSO_RENDERED)
    return public


def _roles(obj: griffe.Object, text: str, pkg: griffe.Module, public: dict[str, str]) -> str:
    rendered = _is_rendered(obj, public)

    def replace(match: re.Match[str]) -> str:
        role, short, target = match.groups()
        shown = target.rsplit(".", 1)[-1] if short else target
        if role in ("func", "meth"):
            shown += "()"
        found = _lookup(obj, target, pkg)
        if found is None:
            if rendered:
                log.warning("%s: %s has no target %r", obj.path, match.group(0), target)
            return f"`{shown}`"
        link = _public_path(found, public)
        return f"[`{shown}`][{link}]" if link else f"`{shown}`"

    return ROLE.sub(replace, text)


def _is_rendered(obj: griffe.Object, public: dict[str, str]) -> bool:
    return any(
        obj.canonical_path == path or obj.canonical_path.startswith(path + ".") for path in public
    )


def _lookup(obj: griffe.Object, target: str, pkg: griffe.Module) -> griffe.Object | None:
    """The object ``target`` names, as Python would read the name where ``obj`` is written."""
    head, _, rest = target.partition(".")
    scope: griffe.Object | None = obj
    start = None
    while scope is not None and start is None:
        try:
            start = scope.resolve(head)
        except griffe.NameResolutionError:
            start = None
        scope = scope.parent
    if start is None and head == PACKAGE:
        start = PACKAGE
    if start is None:
        return None
    path = f"{start}.{rest}" if rest else start
    try:
        found = pkg.modules_collection.get_member(path)
    except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    try:
        return found.final_target if found.is_alias else found
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


def _public_path(found: griffe.Object, public: dict[str, str]) -> str | None:
    path = found.canonical_path
    for canonical, shown in public.items():
        if path == canonical:
            return shown
        if path.startswith(canonical + "."):
            return shown + path[len(canonical) :]
    return None


def _hide_private_parameters(function: griffe.Function) -> None:
    shown = [p for p in function.parameters if not p.name.startswith("_")]
    if len(shown) < len(function.parameters):
        function.parameters = griffe.Parameters(*shown)


def _constant_defaults(function: griffe.Function) -> None:
    for parameter in function.parameters:
        default = str(parameter.default) if parameter.default is not None else ""
        if not default.isidentifier() or default in ("None", "True", "False"):
            continue
        try:
            found = function.modules_collection.get_member(function.resolve(default))
            found = found.final_target if found.is_alias else found
        except (KeyError, griffe.NameResolutionError, griffe.AliasResolutionError):
            continue
        value = getattr(found, "value", None)
        if value is not None and _is_literal(str(value)):
            parameter.default = str(value)


def _literal_value_only(attr: griffe.Attribute) -> None:
    if attr.value is not None and not _is_literal(str(attr.value)):
        attr.value = None


def _is_literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def _comment_as_docstring(attr: griffe.Attribute) -> None:
    """A class attribute's trailing comment, else the comment lines right above it."""
    if attr.lineno is None or not isinstance(attr.parent, griffe.Class):
        return
    lines = attr.lines_collection[attr.filepath]  # type: ignore[index]
    text = _trailing_comment(lines[attr.lineno - 1])
    if text is None:
        above: list[str] = []
        for line in reversed(lines[: attr.lineno - 1]):
            if not line.strip().startswith("#"):
                break
            above.insert(0, line.strip().lstrip("#").strip())
        text = " ".join(above) or None
    if text:
        attr.docstring = griffe.Docstring(text, lineno=attr.lineno, parent=attr)


def _trailing_comment(line: str) -> str | None:
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    comments = [t.string for t in tokens if t.type == tokenize.COMMENT]
    return comments[-1].lstrip("#").strip() if comments else None


def _fields_as_section(cls: griffe.Class) -> None:
    fields = [
        member
        for name, member in cls.members.items()
        if isinstance(member, griffe.Attribute)
        and not name.startswith("_")
        and "property" not in member.labels
        and member.annotation is not None
    ]
    if not fields:
        return
    lines = ["Attributes:"]
    for field in fields:
        doc = field.docstring.value if field.docstring else ""
        first, *rest = doc.splitlines() or [""]
        lines.append(f"    {field.name} ({field.annotation}): {first}".rstrip())
        lines.extend(f"        {line}" for line in rest)
        cls.del_member(field.name)
    text = "\n".join(lines)
    if cls.docstring is None:
        cls.docstring = griffe.Docstring(text, parent=cls)
    else:
        cls.docstring.value = f"{cls.docstring.value}\n\n{text}"


def _twin_members(cls: griffe.Class) -> None:
    """``BlockingSession(_Twin[Session], twin_of=Session)``: its shared names, as they run."""
    twin_of = next((str(b) for b in cls.bases if str(b).startswith("_Twin[")), None)
    if twin_of is None:
        return
    try:
        target = cls.modules_collection.get_member(cls.parent.resolve(twin_of[6:-1]))  # type: ignore[union-attr]
        target = target.final_target if target.is_alias else target
    except (KeyError, griffe.NameResolutionError, griffe.AliasResolutionError):
        log.warning("%s: its async class %s is not found", cls.path, twin_of)
        return
    for name, member in list(cls.members.items()):
        if not isinstance(member, griffe.Attribute):
            continue
        annotation = str(member.annotation or "")
        value = str(member.value or "")
        if annotation.startswith("_Same["):
            blocks = False
        elif value.startswith("_blocking("):
            blocks = True
        else:
            continue
        own = target.members.get(name)
        if own is None:
            log.warning("%s.%s: %s has no %s", cls.path, name, target.path, name)
            continue
        cls.set_member(name, _copy(own, cls, blocks))


def _copy(own: griffe.Object, parent: griffe.Class, blocks: bool) -> griffe.Object:
    doc = own.docstring.value if own.docstring else ""
    if blocks:
        doc = f"{doc}\n\n{BLOCKING_NOTE}" if doc else BLOCKING_NOTE
    docstring = griffe.Docstring(doc, parent=None) if doc else None
    copy: griffe.Object
    if isinstance(own, griffe.Function):
        parameters = griffe.Parameters(
            *(
                griffe.Parameter(p.name, annotation=p.annotation, kind=p.kind, default=p.default)
                for p in own.parameters
            )
        )
        copy = griffe.Function(
            own.name,
            parameters=parameters,
            returns=own.returns,
            docstring=docstring,
            parent=parent,
        )
    else:
        copy = griffe.Attribute(
            own.name,
            annotation=own.annotation,  # type: ignore[attr-defined]
            docstring=docstring,
            parent=parent,
        )
    copy.labels = set(own.labels) - {"async"}
    if docstring is not None:
        docstring.parent = copy
    return copy
