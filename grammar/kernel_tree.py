"""Inside a kernel tree: its headers, configuration, asm-offsets and C declarations.

A kernel source tree is a directory holding ``arch/x86/include``,
``include/linux`` and a top-level ``Kbuild`` or ``Makefile``
(:func:`is_source_tree`).  The files of a group that lie in one (or all
the files, when ``--kernel-tree``/``--kernel-build`` name one) are read
the way Kbuild reads them, and what the tree declares about its TDX
wrappers becomes :class:`grammar.declarations.TreeFacts`.

Decisions:

* **Build directory.**  A build in the tree keeps ``.config`` and the
  generated headers in the source tree itself.  An out-of-tree build
  (``make O=DIR``) keeps them in DIR: name it with ``--kernel-build DIR``,
  or name it with ``--kernel-tree DIR``; its source tree is the target of
  its ``source`` symbolic link (Kbuild makes one) or the tree its
  ``Makefile`` includes (:func:`source_of_build`).
* **Include path, as Kbuild's ``LINUXINCLUDE``** (:func:`search`):
  ``-nostdinc``, then ``arch/x86/include``, ``arch/x86/include/generated``,
  ``include`` (the source tree's, then the build directory's),
  ``arch/x86/include/uapi``, ``arch/x86/include/generated/uapi``,
  ``include/uapi``, ``include/generated/uapi`` (each ``generated`` one of
  the build directory), ``-include include/linux/compiler-version.h``
  (when the tree has it) and ``-include include/linux/kconfig.h``.  The
  shims are not used: a header the tree lacks is the C preprocessor's own
  error.  The user's ``-I`` directories are searched before the tree's.
* **What an unbuilt tree lacks, tdxproof generates** into a private
  directory (in the user's cache directory, named after the digest of its
  contents, so that a counterexample's replay finds the same files):
  ``generated/autoconf.h`` always (from the tree's configuration, less
  the options the command line sets, which reach the preprocessor as
  ``-D``/``-U``); the ``#include <asm-generic/NAME.h>`` wrappers that
  Kbuild writes into ``arch/x86/include/generated/{,uapi/}asm`` for the
  ``generic-y`` and ``mandatory-y`` headers the architecture does not
  provide (when the build directory has no
  ``arch/x86/include/generated/asm``); and ``generated/asm-offsets.h``
  when the build directory has no ``include/generated/asm-offsets.h``.
* **Configuration** (:func:`read_config`): the build directory's
  ``.config``, else the source tree's, else
  ``include/generated/autoconf.h`` (same order); a line of neither form
  is an error at its place.  Option names are read as the tree spells
  them (``CONFIG_RETHUNK`` or ``CONFIG_MITIGATION_RETHUNK``).  An option
  the configuration does not mention at all (an unconfigured tree
  mentions none) and that a Makefile on the way from ``arch/x86`` to a
  checked file tests (``obj-$(CONFIG_INTEL_TDX_GUEST) += tdx/``) is on:
  Kbuild builds the file only then (:func:`build_options`).  ``--config``
  and ``--matrix`` win over both.  The report lists the options the
  group's files and the headers they read mention, each with its source.
* **asm-offsets** (:func:`asm_offsets`): the build directory's
  ``include/generated/asm-offsets.h`` when there is one (its ``TDX_*``
  values); otherwise the ``OFFSET(SYM, struct, field)`` lines of
  ``arch/x86/kernel/asm-offsets*.c`` whose ``SYM`` starts with ``TDX_``
  (read as text: a ``DEFINE()`` of a ``TDX_`` symbol, or a nested field,
  is an error), over the struct layouts below.
* **Struct layouts** (:func:`struct_layouts`): the definition ``struct
  NAME { ... };`` is found in the TDX headers (:data:`TDX_HEADERS`, and
  the ``.h`` files beside the checked files); the offsets and sizes are
  the C compiler's (a generated C file includes those headers with the
  tree's flags and emits each ``offsetof``/``sizeof`` into its assembly
  output, as Kbuild's asm-offsets does).  When that compile fails (an
  unbuilt tree's headers may need files only a build generates), a small
  exact reader lays the struct out: flat structs whose fields are the
  fixed-size integer types (``u8``..``u64``, ``__u8``..``__u64``,
  ``uint8_t``..``uint64_t``, ``s8``..``s64``, ``char``, ``short``,
  ``int``, ``long``, ``long long`` and their ``unsigned``/``signed``
  forms, ``bool``), pointers, and arrays of those, with the x86-64 System V
  sizes and alignments.  Anything else (a nested struct, a bit-field, a
  preprocessor directive inside the body, another type) is an error
  naming it.
* **Prototypes** (:func:`prototypes`): each TDX header is run through the
  C preprocessor as C (``-D__KERNEL__``, the tree's flags and the
  group's configuration); the declarations that come from the header
  itself are read (definitions, typedefs and function-pointer
  declarations are skipped) and mapped back to their ``file:line``
  through the line markers.  A header the preprocessor rejects is a note
  of the facts, not an error: its functions have no declared ABI.
* Paths in facts and sources are spelled relative to the current
  directory when they lie under it, else absolute.
* Everything is computed once per process and tree (thread-safe: the
  preprocessor runs of several groups may ask at once), and an error is
  remembered and raised again, so that a tree that is bad input fails
  its own group only.
"""
from __future__ import annotations

import atexit
import hashlib
import os
import re
import shlex
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from grammar.caches import CACHES, cache_directory
from grammar.cpp import DEFAULT_CPP, SourceLine, map_lines, run_preprocessor
from grammar.declarations import (ConfigValue, Parameter, Prototype, StructField, StructLayout, TreeFacts,
                                  Value)
from grammar.limits import Limits
from grammar.source import Origin, SourceError

ARCH = "arch/x86"
COMPILER = "cc"
"""The C compiler that lays structs out (the kernel's ``CC``)."""

TDX_HEADERS = ("arch/x86/include/asm/shared/tdx.h", "arch/x86/include/asm/tdx.h",
               "arch/x86/virt/vmx/tdx/*.h", "arch/x86/coco/tdx/*.h")
"""Where a tree declares its TDX wrappers and structs (globs, relative to the source tree)."""

OFFSET_FILES = "arch/x86/kernel/asm-offsets*.c"
GENERATED_OFFSETS = "include/generated/asm-offsets.h"
AUTOCONF = "include/generated/autoconf.h"
KCONFIG_H = "include/linux/kconfig.h"
COMPILER_VERSION_H = "include/linux/compiler-version.h"
COMPILER_TYPES_H = "include/linux/compiler_types.h"
# What every C file that includes a TDX header has seen before it (older
# headers use -ENODEV and the u64 types without including their headers).
LAYOUT_PRELUDE = ("linux/types.h", "linux/errno.h")


# --- where the tree is ---------------------------------------------------------------

@dataclass(frozen=True)
class KernelTree:
    """A kernel source tree and its build directory (absolute paths; the
    same directory for a build in the tree)."""

    source: str
    build: str


def is_source_tree(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` is a kernel source tree.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tree:
    ...     before = is_source_tree(tree)
    ...     for sub in ("arch/x86/include", "include/linux"):
    ...         (Path(tree) / sub).mkdir(parents=True)
    ...     _ = (Path(tree) / "Kbuild").write_text("")
    ...     before, is_source_tree(tree)
    (False, True)
    """
    root = Path(directory)
    return ((root / ARCH / "include").is_dir() and (root / "include/linux").is_dir()
            and ((root / "Kbuild").is_file() or (root / "Makefile").is_file()))


def source_of_build(directory: str) -> str | None:
    """The source tree of build directory ``directory``: the target of its
    ``source`` link, else the tree an ``include PATH/Makefile`` line of its
    ``Makefile`` names; ``None`` when neither is a source tree."""
    link = os.path.join(directory, "source")
    if os.path.islink(link) and is_source_tree(os.path.realpath(link)):
        return os.path.realpath(link)
    try:
        text = Path(directory, "Makefile").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for match in re.finditer(r"^\s*include\s+(\S+)/Makefile\s*$", text, re.M):
        candidate = os.path.normpath(os.path.join(directory, match.group(1)))
        if is_source_tree(candidate):
            return os.path.realpath(candidate)
    return None


def _is_build(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, ".config")) or os.path.isdir(
        os.path.join(directory, "include/generated"))


def locate(tree: str | None, build: str | None) -> KernelTree | None:
    """The tree ``--kernel-tree``/``--kernel-build`` name (``None`` when
    neither is given); a directory that is neither a source tree nor a
    build directory of one is an error."""
    if tree is None and build is None:
        return None
    for option, directory in (("--kernel-tree", tree), ("--kernel-build", build)):
        if directory is not None and not os.path.isdir(directory):
            raise SourceError(f"{option} {directory}: {'not a' if os.path.exists(directory) else 'no such'} directory")
    source = None
    if tree is not None:
        if is_source_tree(tree):
            source = os.path.realpath(tree)
        elif source_of_build(tree) is not None:
            if build is not None and os.path.realpath(build) != os.path.realpath(tree):
                raise SourceError(f"--kernel-tree {tree} is a build directory and --kernel-build names "
                                  f"another ({build}): name the source tree with --kernel-tree")
            source, build = source_of_build(tree), tree
        else:
            raise SourceError(f"--kernel-tree {tree}: not a kernel tree (a source tree holds "
                              f"{ARCH}/include, include/linux and a Kbuild or Makefile; a build directory "
                              f"made with make O=DIR has a 'source' link to one)")
    if build is not None:
        if not _is_build(build):
            raise SourceError(f"--kernel-build {build}: not a kernel build directory "
                              f"(it has neither .config nor include/generated)")
        if source is None:
            source = source_of_build(build)
            if source is None:
                raise SourceError(f"--kernel-build {build}: cannot tell its source tree (it has no 'source' "
                                  f"link to one and its Makefile includes none): name it with --kernel-tree")
    return KernelTree(source, os.path.realpath(build) if build is not None else source)


def display(path: str | os.PathLike) -> str:
    """``path`` as reports spell it: relative to the current directory
    when it lies under it, else absolute.

    >>> display(os.path.join(os.getcwd(), "arch/x86/a.h")), display("/nonexistent/a.h")
    ('arch/x86/a.h', '/nonexistent/a.h')
    """
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute)
    return absolute if relative == ".." or relative.startswith("../") else relative


# --- remembered results ---------------------------------------------------------------

_LOCK = threading.RLock()
_MEMO = CACHES.cache("kernel trees", 64)
"""(what, tree, options...) -> a tree's search path, generated headers or
facts, or the SourceError (at most 4 in one ``check`` of a shipped tree)."""


def _remembered(key: tuple, compute: Callable[[], object]):
    """``compute()`` once per ``key`` in this process; a SourceError it
    raised is raised again."""
    with _LOCK:
        if key in _MEMO:
            outcome = _MEMO[key]
        else:
            try:
                outcome = compute()
            except SourceError as error:
                outcome = error
            _MEMO[key] = outcome
    if isinstance(outcome, SourceError):
        raise SourceError(outcome.message, outcome.origin)
    return outcome


# --- reading text ---------------------------------------------------------------------

def _read(path: str, what: str) -> str:
    """The text of a tree file the tool needs; unreadable is an error naming it."""
    origin = Origin(display(path), 1)
    if not os.path.isfile(path):
        raise SourceError(f"cannot read {what}: not a regular file", origin)
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise SourceError(f"cannot read {what}: {error.strerror}", origin) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise SourceError(f"{what} is not UTF-8 text (byte {data[error.start]:#04x})",
                          Origin(display(path), line)) from None


def _without_comments(text: str) -> str:
    """C text with its comments blanked (newlines kept, so lines keep their numbers).

    >>> _without_comments('a /* x\\ny */ b // c\\n"/*"')
    'a \\n b \\n"/*"'
    """
    def blank(match: re.Match) -> str:
        token = match.group(0)
        return token if token[0] in "\"'" else "\n" * token.count("\n")
    return re.sub(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|/\*.*?\*/|//[^\n]*', blank, text, flags=re.S)


# --- configuration ---------------------------------------------------------------------

_CONFIG_NAME = r"CONFIG_[A-Za-z0-9_]+"
_CONFIG_VALUE = r'[ymn]|-?(?:0[xX][0-9a-fA-F]+|\d+)|"(?:[^"\\]|\\.)*"'


def _config_paths(tree: KernelTree) -> list[str]:
    directories = list(dict.fromkeys((tree.build, tree.source)))
    return ([os.path.join(d, ".config") for d in directories] + [os.path.join(d, AUTOCONF) for d in directories])


def read_config(tree: KernelTree) -> tuple[str | None, dict[str, tuple[str, int]]]:
    """The tree's configuration: (the file read, or ``None`` when the tree
    has none; option -> (value as ``.config`` spells it, line))."""
    for path in _config_paths(tree):
        if os.path.lexists(path):
            reader = _dot_config if os.path.basename(path) == ".config" else _autoconf
            return path, reader(path)
    return None, {}


def _dot_config(path: str) -> dict[str, tuple[str, int]]:
    """A ``.config``: ``CONFIG_X=VALUE`` and ``# CONFIG_X is not set`` lines,
    comments and blank lines.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = Path(d, ".config").write_text('# c\\nCONFIG_A=y\\n# CONFIG_B is not set\\nCONFIG_S="x"\\n')
    ...     _dot_config(f"{d}/.config")
    {'CONFIG_A': ('y', 2), 'CONFIG_B': ('n', 3), 'CONFIG_S': ('"x"', 4)}
    """
    values: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(_read(path, "the kernel configuration").splitlines(), start=1):
        text = line.strip()
        unset = re.fullmatch(rf"#\s*({_CONFIG_NAME}) is not set", text)
        if unset:
            values[unset.group(1)] = ("n", number)
            continue
        if not text or text.startswith("#"):
            continue
        match = re.fullmatch(rf"({_CONFIG_NAME})=({_CONFIG_VALUE})", text)
        if not match:
            raise SourceError(f"not a kernel configuration line (expected CONFIG_NAME=VALUE, "
                              f"'# CONFIG_NAME is not set' or a comment): {text[:60]!r}",
                              Origin(display(path), number))
        values[match.group(1)] = (match.group(2), number)
    return values


def _autoconf(path: str) -> dict[str, tuple[str, int]]:
    """An ``autoconf.h``: ``#define CONFIG_X VALUE`` lines (``CONFIG_X_MODULE
    1`` is ``m``, ``1`` is ``y``), comments and blank lines."""
    values: dict[str, tuple[str, int]] = {}
    text = _without_comments(_read(path, "the kernel configuration header"))
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        match = re.fullmatch(rf"#\s*define\s+({_CONFIG_NAME})\s+(\S.*?)", line)
        if not match or not re.fullmatch(_CONFIG_VALUE, match.group(2)):
            raise SourceError(f"not a kernel configuration header line (expected #define CONFIG_NAME "
                              f"VALUE): {line[:60]!r}", Origin(display(path), number))
        name, value = match.groups()
        if name.endswith("_MODULE") and value == "1":
            values[name.removesuffix("_MODULE")] = ("m", number)
        else:
            values[name] = ("y" if value == "1" else value, number)
    return values


def _config_value(value: str, source: str) -> ConfigValue:
    return ConfigValue(value not in ("n", "0", '""'), source, value)


def _autoconf_text(config: Mapping[str, str], origin: str | None, overridden: Iterable[str]) -> str:
    """Our ``generated/autoconf.h``: the tree's options less ``overridden``.

    >>> print(_autoconf_text({"CONFIG_A": "y", "CONFIG_B": "m", "CONFIG_C": "n", "CONFIG_N": "16"}, ".config",
    ...                      ["CONFIG_N"]), end="")
    /* Generated by tdxproof from .config (options set on the command line left out). */
    #define CONFIG_A 1
    #define CONFIG_B_MODULE 1
    """
    skip = set(overridden)
    lines = [f"/* Generated by tdxproof from {origin or 'no configuration'} "
             f"(options set on the command line left out). */"]
    for name, value in sorted(config.items()):
        if name in skip or value == "n":
            continue
        lines.append(f"#define {name}_MODULE 1" if value == "m" else f"#define {name} {'1' if value == 'y' else value}")
    return "\n".join(lines) + "\n"


# --- which options build a file ---------------------------------------------------------

def _kbuild_file(directory: Path) -> Path | None:
    for name in ("Kbuild", "Makefile"):
        if (directory / name).is_file():
            return directory / name
    return None


def _object_lines(path: Path) -> Iterable[tuple[str | None, list[str], int]]:
    """The ``obj-y``/``obj-$(CONFIG_X)`` assignments of a Kbuild file:
    (option or None, words, line)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    logical, start = "", 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not logical:
            start = number
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        match = re.match(r"\s*obj-(?:y|\$\((" + _CONFIG_NAME + r")\))\s*[:+]?=(.*)", logical.split("#")[0])
        if match:
            yield match.group(1), match.group(2).split(), start
        logical = ""


def build_options(source: str, path: str) -> list[tuple[str, str]]:
    """The options Kbuild needs to build ``path`` (a file of source tree
    ``source``): for each directory from the file's up to ``arch/x86``, the
    ``obj-$(CONFIG_X)`` line of its Kbuild file that names the file's
    object (``tdcall.o``) or the directory below (``tdx/``).  The walk
    stops at a directory that names neither.  (option, "FILE:LINE").

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tree:
    ...     (Path(tree) / "arch/x86/coco/tdx").mkdir(parents=True)
    ...     _ = (Path(tree) / "arch/x86/Kbuild").write_text("obj-y += coco/\\n")
    ...     _ = (Path(tree) / "arch/x86/coco/Makefile").write_text("obj-$(CONFIG_TDX) += \\\\\\n\\ttdx/\\n")
    ...     _ = (Path(tree) / "arch/x86/coco/tdx/Makefile").write_text("obj-y += tdcall.o\\n")
    ...     [(name, where.endswith("arch/x86/coco/Makefile:1")) for name, where in
    ...      build_options(tree, f"{tree}/arch/x86/coco/tdx/tdcall.S")]
    [('CONFIG_TDX', True)]
    """
    top = Path(source, ARCH).resolve()
    file = Path(os.path.abspath(path)).resolve()
    if top not in file.parents:
        return []
    directory, child, found = file.parent, file.stem + ".o", []
    while True:
        kbuild = _kbuild_file(directory)
        named = [(option, number) for option, words, number in (_object_lines(kbuild) if kbuild else ())
                 if child in words]
        if not named:
            return found
        found += [(option, f"{display(kbuild)}:{number}") for option, number in named if option]
        if directory == top:
            return found
        directory, child = directory.parent, directory.name + "/"


# --- the generated headers ---------------------------------------------------------------

def _kbuild_names(path: Path, kind: str) -> list[str]:
    """The headers a Kbuild file lists as ``KIND-y += NAME.h``."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    names = []
    for match in re.finditer(rf"^\s*{kind}-y\s*\+?=\s*(.*)$", text, re.M):
        names += [word for word in match.group(1).split("#")[0].split() if word.endswith(".h")]
    return names


def generic_wrappers(source: str, uapi: bool) -> dict[str, str]:
    """The ``asm/NAME.h`` -> ``#include <asm-generic/NAME.h>`` wrappers
    Kbuild generates into ``arch/x86/include/generated/{uapi/}asm``: the
    architecture's ``generic-y`` and the ``mandatory-y`` of the generic
    Kbuild file that the architecture neither provides nor generates."""
    arch = Path(source, ARCH, "include/uapi/asm" if uapi else "include/asm")
    generic = Path(source, "include/uapi/asm-generic" if uapi else "include/asm-generic", "Kbuild")
    generated = set(_kbuild_names(arch / "Kbuild", "generated"))
    names = _kbuild_names(arch / "Kbuild", "generic") + [
        name for name in _kbuild_names(generic, "mandatory")
        if name not in generated and not (arch / name).exists()]
    return {f"asm/{name}": f"#include <asm-generic/{name}>\n" for name in dict.fromkeys(names)}


@dataclass(frozen=True)
class Search:
    """How the C preprocessor searches a tree: include directories (after
    the user's) and ``-include`` files, in order."""

    include_dirs: tuple[str, ...]
    include_files: tuple[str, ...]
    private: str


def _private_directory(files: Mapping[str, str]) -> str:
    """A directory holding ``files`` (relative name -> text): in the user's
    cache directory, named after their digest (written once, atomically),
    else a temporary directory of this process."""
    digest = hashlib.sha256(repr(sorted(files.items())).encode("utf-8")).hexdigest()[:32]
    base = cache_directory()
    if base is not None:
        target = base / "trees" / digest
        try:
            if not target.is_dir():
                target.parent.mkdir(parents=True, exist_ok=True)
                staging = tempfile.mkdtemp(prefix=".staging-", dir=target.parent)
                _write_files(staging, files)
                try:
                    os.rename(staging, target)
                except OSError:
                    shutil.rmtree(staging, ignore_errors=True)   # another run made it first
            if all((target / name).is_file() for name in files):
                return str(target)
        except OSError:
            pass
    directory = tempfile.mkdtemp(prefix="tdxproof-tree-")
    atexit.register(shutil.rmtree, directory, True)
    _write_files(directory, files)
    return directory


def _write_files(directory: str, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = Path(directory, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _search_of(tree: KernelTree, private: str) -> Search:
    src, obj = Path(tree.source), Path(tree.build)
    arch_generated = obj / ARCH / "include/generated"
    dirs = [src / ARCH / "include", arch_generated]
    if not (arch_generated / "asm").is_dir():
        dirs.append(Path(private, "arch-generated"))
    dirs += [Path(private, "include"), src / "include", obj / "include", src / ARCH / "include/uapi",
             arch_generated / "uapi"]
    if not (arch_generated / "uapi/asm").is_dir():
        dirs.append(Path(private, "arch-generated-uapi"))
    dirs += [src / "include/uapi", obj / "include/generated/uapi"]
    existing = [display(d) for d in dict.fromkeys(dirs) if d.is_dir()]
    files = [display(src / name) for name in (COMPILER_VERSION_H,) if (src / name).is_file()]
    kconfig = src / KCONFIG_H
    if not kconfig.is_file():
        raise SourceError(f"the kernel tree {display(src)} has no {KCONFIG_H} (Kbuild includes it in every file)")
    return Search(tuple(existing), tuple(files) + (display(kconfig),), private)


def search(tree: KernelTree, overridden: Iterable[str], cpp: str | None = None,
           limits: Limits = Limits()) -> Search:
    """The include path of ``tree`` with the options ``overridden`` left to
    the command line (see the module doc), generating what it lacks."""
    names = tuple(sorted(set(overridden)))

    def compute() -> Search:
        files, _, _ = _generated(tree, cpp, limits)
        origin, config = read_config(tree)
        autoconf = _autoconf_text({name: value for name, (value, _) in config.items()},
                                  display(origin) if origin else None, names)
        return _search_of(tree, _private_directory({**files, "include/generated/autoconf.h": autoconf}))
    return _remembered(("search", tree, names, cpp, limits), compute)


def _generated(tree: KernelTree, cpp: str | None, limits: Limits
               ) -> tuple[dict[str, str], dict[str, Value], dict[str, StructLayout]]:
    """What tdxproof generates for ``tree`` (less ``autoconf.h``), its
    asm-offsets and the layouts of the structs they are offsets in (none
    when the tree has its own generated asm-offsets)."""
    def compute():
        files = {}
        arch_generated = Path(tree.build, ARCH, "include/generated")
        if not (arch_generated / "asm").is_dir():
            files.update({f"arch-generated/{name}": text
                          for name, text in generic_wrappers(tree.source, False).items()})
        if not (arch_generated / "uapi/asm").is_dir():
            files.update({f"arch-generated-uapi/{name}": text
                          for name, text in generic_wrappers(tree.source, True).items()})
        generated = os.path.join(tree.build, GENERATED_OFFSETS)
        if os.path.lexists(generated):
            return files, generated_offsets(generated), {}
        origin, config = read_config(tree)
        autoconf = _autoconf_text({name: value for name, (value, _) in config.items()},
                                  display(origin) if origin else None, ())
        # Lay the structs out with the search path so far, then add the offsets.
        with tempfile.TemporaryDirectory(prefix="tdxproof-tree-") as staging:
            _write_files(staging, {**files, "include/generated/autoconf.h": autoconf})
            lines = offset_lines(tree.source)
            layouts = struct_layouts(tree, sorted({line.struct for line in lines}), _search_of(tree, staging),
                                     (), cpp, limits)
        offsets = _derived_offsets(lines, layouts)
        files["include/generated/asm-offsets.h"] = _asm_offsets_text(offsets)
        return files, offsets, layouts
    return _remembered(("generated", tree, cpp, limits), compute)


def asm_offsets(tree: KernelTree, cpp: str | None = None, limits: Limits = Limits()) -> dict[str, Value]:
    """The ``TDX_*`` asm-offsets the tree's assembly sees (see the module doc)."""
    return _generated(tree, cpp, limits)[1]


# --- asm-offsets ------------------------------------------------------------------------

@dataclass(frozen=True)
class OffsetLine:
    """``OFFSET(symbol, struct, field)`` at ``origin``."""

    symbol: str
    struct: str
    field: str
    origin: Origin


def offset_lines(source: str) -> list[OffsetLine]:
    """The ``OFFSET()`` lines of ``TDX_*`` symbols in ``arch/x86/kernel/asm-offsets*.c``."""
    found: dict[str, OffsetLine] = {}
    for path in sorted(Path(source).glob(OFFSET_FILES)):
        text = _without_comments(_read(str(path), "asm-offsets source"))
        for number, line in enumerate(text.splitlines(), start=1):
            origin = Origin(display(path), number)
            if re.search(r"\bDEFINE\s*\(\s*TDX_", line):
                raise SourceError("DEFINE() of a TDX_ symbol: tdxproof derives only OFFSET(SYM, struct, field) "
                                  "lines (build the tree to have include/generated/asm-offsets.h)", origin)
            for match in re.finditer(r"\bOFFSET\s*\(\s*(TDX_\w+)\s*,\s*([^,()]*?)\s*,\s*([^()]*?)\s*\)", line):
                symbol, struct, field = match.groups()
                if not re.fullmatch(r"\w+", struct) or not re.fullmatch(r"\w+", field):
                    raise SourceError(f"OFFSET({symbol}, {struct}, {field}): tdxproof derives offsets of plain "
                                      f"fields of a struct only", origin.at_column(match.start() + 1))
                line_ = OffsetLine(symbol, struct, field, origin.at_column(match.start() + 1))
                earlier = found.get(symbol)
                if earlier and (earlier.struct, earlier.field) != (struct, field):
                    raise SourceError(f"OFFSET({symbol}, ...) is given twice, differently (also at "
                                      f"{earlier.origin.file}:{earlier.origin.line})", line_.origin)
                found.setdefault(symbol, line_)
    return list(found.values())


def _derived_offsets(lines: Sequence[OffsetLine], layouts: Mapping[str, StructLayout]) -> dict[str, Value]:
    offsets = {}
    for line in lines:
        layout = layouts[line.struct]
        field = layout.field(line.field)
        if field is None:
            where = f" ({layout.origin.file}:{layout.origin.line})" if layout.origin else ""
            raise SourceError(f"OFFSET({line.symbol}, {line.struct}, {line.field}): struct {line.struct}{where} "
                              f"has no field '{line.field}' (fields: "
                              f"{', '.join(f.name for f in layout.fields)})", line.origin)
        where = f" at {layout.origin.file}:{layout.origin.line}" if layout.origin else ""
        offsets[line.symbol] = Value(field.offset, f"OFFSET() in {line.origin.file} over struct {line.struct}"
                                                   f"{where}, {layout.source}")
    return offsets


def _asm_offsets_text(offsets: Mapping[str, Value]) -> str:
    lines = ["/* Generated by tdxproof: the TDX asm-offsets of an unbuilt kernel tree. */",
             "#ifndef __ASM_OFFSETS_H__", "#define __ASM_OFFSETS_H__"]
    lines += [f"#define {symbol} {value.value} /* {value.source} */" for symbol, value in offsets.items()]
    return "\n".join(lines + ["#endif"]) + "\n"


def generated_offsets(path: str) -> dict[str, Value]:
    """The ``TDX_*`` values of a built tree's ``include/generated/asm-offsets.h``.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = Path(d, "o.h").write_text("#define TDX_MODULE_rcx 0 /* x */\\n#define OTHER 3\\n#define TDX_MODULE_rdx 8\\n")
    ...     sorted((k, v.value) for k, v in generated_offsets(f"{d}/o.h").items())
    [('TDX_MODULE_rcx', 0), ('TDX_MODULE_rdx', 8)]
    """
    text = _without_comments(_read(path, "the generated asm-offsets header"))
    offsets = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = re.match(r"\s*#\s*define\s+(TDX_\w+)\s*(.*?)\s*$", line)
        if not match:
            continue
        try:
            value = int(match.group(2), 0)
        except ValueError:
            raise SourceError(f"{match.group(1)} is not a number ({match.group(2)!r})",
                              Origin(display(path), number)) from None
        offsets[match.group(1)] = Value(value, f"{display(path)}")
    return offsets


# --- struct layouts ---------------------------------------------------------------------

@dataclass(frozen=True)
class Member:
    """One declarator of a struct body: its type words, name, array
    lengths and place."""

    type: str
    name: str
    dimensions: tuple[int, ...]
    origin: Origin


@dataclass(frozen=True)
class Definition:
    """``struct NAME { ... };`` in a header: its members in order."""

    name: str
    header: str
    origin: Origin
    members: tuple[Member, ...] | SourceError


def tdx_headers(source: str, files: Sequence[str] = ()) -> list[str]:
    """The headers searched for declarations and struct definitions:
    :data:`TDX_HEADERS`, then the ``.h`` files beside ``files`` (those in the tree)."""
    found = [path for pattern in TDX_HEADERS for path in sorted(Path(source).glob(pattern))]
    for file in files:
        directory = Path(os.path.abspath(file)).parent
        if Path(source).resolve() in directory.resolve().parents:
            found += sorted(directory.glob("*.h"))
    return [str(path) for path in dict.fromkeys(found) if path.is_file()]


def _definitions(header: str, names: Iterable[str]) -> dict[str, Definition]:
    text = _without_comments(_read(header, "a kernel header"))
    found = {}
    for name in names:
        match = re.search(rf"\bstruct\s+{name}\s*\{{", text)
        if match:
            line = text.count("\n", 0, match.start()) + 1
            origin = Origin(display(header), line, match.start() - text.rfind("\n", 0, match.start()))
            found[name] = Definition(name, header, origin, _members(text, match.end(), name, origin, header))
    return found


def _members(text: str, start: int, name: str, origin: Origin, header: str) -> tuple[Member, ...] | SourceError:
    """The members of the body that starts at ``start`` (after ``{``), or
    the error saying what tdxproof does not read in it."""
    end = text.find("}", start)
    if end < 0:
        return SourceError(f"struct {name}: no closing brace", origin)
    body = text[start:end]
    members = []
    position = start
    for declaration in body.split(";"):
        here = Origin(display(header), text.count("\n", 0, position + len(declaration) - len(declaration.lstrip())) + 1)
        position += len(declaration) + 1
        declaration = " ".join(declaration.split())
        if not declaration:
            continue
        if "{" in declaration or "#" in declaration or ":" in declaration:
            what = ("a nested struct or union" if "{" in declaration else
                    "a preprocessor directive" if "#" in declaration else "a bit-field")
            return SourceError(f"struct {name}: {what} ({declaration[:50]!r}): tdxproof reads flat structs of "
                               f"plain fields only", here)
        pieces = declaration.split(",")
        first = re.fullmatch(r"(.*?[\w\s])\s*(\**)\s*([A-Za-z_]\w*)\s*((?:\[[^\]]*\]\s*)*)", pieces[0])
        if not first or not first.group(1).strip():
            return SourceError(f"struct {name}: cannot read the field declaration {declaration!r}", here)
        base = first.group(1).strip()
        for index, declarator in enumerate(pieces):
            parts = first if index == 0 else re.fullmatch(
                r"\s*()(\**)\s*([A-Za-z_]\w*)\s*((?:\[[^\]]*\]\s*)*)", declarator)
            if not parts:
                return SourceError(f"struct {name}: cannot read the field declaration {declaration!r}", here)
            _, stars, field, arrays = parts.groups()
            try:
                dimensions = tuple(int(n, 0) for n in re.findall(r"\[\s*([^\]]*?)\s*\]", arrays))
            except ValueError:
                return SourceError(f"struct {name}: field '{field}' has an array length that is not a number "
                                   f"({arrays.strip()})", here)
            members.append(Member((base + " " + stars).strip(), field, dimensions, here))
    if not members:
        return SourceError(f"struct {name} has no fields", origin)
    return tuple(members)


_SCALARS: dict[str, int] = {}
for _size, _names in ((1, "u8 s8 __u8 __s8 uint8_t int8_t char bool _Bool"),
                      (2, "u16 s16 __u16 __s16 uint16_t int16_t short"),
                      (4, "u32 s32 __u32 __s32 uint32_t int32_t int"),
                      (8, "u64 s64 __u64 __s64 uint64_t int64_t long")):
    _SCALARS.update(dict.fromkeys(_names.split(), _size))


def scalar_size(type_text: str) -> int | None:
    """Size (= alignment) of a field type on x86-64, or ``None`` when the
    reader does not know it.

    >>> [scalar_size(t) for t in ("u64", "unsigned long long", "const u8", "struct x *", "short int", "struct x")]
    [8, 8, 1, 8, 2, None]
    """
    words = [w for w in type_text.replace("*", " * ").split() if w not in ("const", "volatile")]
    if "*" in words:
        return 8
    words = [w for w in words if w not in ("unsigned", "signed")] or ["int"]
    if words in (["long", "long"], ["long", "long", "int"], ["long", "int"]):
        return 8
    if words == ["short", "int"]:
        return 2
    return _SCALARS[words[0]] if len(words) == 1 and words[0] in _SCALARS else None


def read_layout(definition: Definition, source: str) -> StructLayout:
    """The reader's layout of ``definition`` (see the module doc).

    >>> d = Definition("s", "s.h", Origin("s.h", 1), (Member("u64", "a", (), Origin("s.h", 2)),
    ...                                               Member("u8", "b", (), Origin("s.h", 3))))
    >>> read_layout(d, "read").text()
    'struct s (16 bytes: a@0, b@8:1; read)'
    """
    if isinstance(definition.members, SourceError):
        raise definition.members
    fields, offset, alignment = [], 0, 1
    for member in definition.members:
        size = scalar_size(member.type)
        if size is None:
            raise SourceError(f"struct {definition.name}: field '{member.name}' has type '{member.type}', which "
                              f"tdxproof's struct reader does not lay out (it reads the fixed-size integer "
                              f"types, pointers and arrays of them)", member.origin)
        count = 1
        for dimension in member.dimensions:
            count *= dimension
        offset = -(-offset // size) * size
        fields.append(StructField(member.name, offset, size * count))
        offset += size * count
        alignment = max(alignment, size)
    return StructLayout(definition.name, tuple(fields), -(-offset // alignment) * alignment, source,
                        definition.origin)


def _c_command(words: Sequence[str], staged: Search, configs: Mapping[str, bool],
               extra: Sequence[str], tree: KernelTree) -> list[str]:
    """A C-mode command with the tree's flags (Kbuild's ``c_flags``, as far as they matter here)."""
    command = [*words, "-nostdinc", *(f"-I{d}" for d in staged.include_dirs), "-D__KERNEL__"]
    command += [f"-D{name}=1" if on else f"-U{name}" for name, on in sorted(configs.items())]
    for name in staged.include_files:
        command += ["-include", name]
    if Path(tree.source, COMPILER_TYPES_H).is_file():
        command += ["-include", display(Path(tree.source, COMPILER_TYPES_H))]
    return command + list(extra)


def _compiler_error(stderr: str) -> str:
    for line in stderr.splitlines():
        if "error" in line:
            return " ".join(line.split())[:200]
    return " ".join(stderr.split())[:200] or "no diagnostic"


def struct_layouts(tree: KernelTree, names: Sequence[str], staged: Search, files: Sequence[str],
                   cpp: str | None, limits: Limits, configs: Mapping[str, bool] | None = None
                   ) -> dict[str, StructLayout]:
    """The layouts of the structs ``names``: each definition found in the
    TDX headers (:func:`tdx_headers`), laid out by the C compiler, else by
    :func:`read_layout`; a struct with no definition is an error."""
    definitions: dict[str, Definition] = {}
    for header in tdx_headers(tree.source, files):
        for name, definition in _definitions(header, [n for n in names if n not in definitions]).items():
            definitions[name] = definition
    missing = [name for name in names if name not in definitions]
    if missing:
        raise SourceError(f"struct {missing[0]} is not defined in the TDX headers of the kernel tree "
                          f"({', '.join(display(h) for h in tdx_headers(tree.source, files)) or 'none found'})")
    if not definitions:
        return {}
    layouts: dict[str, StructLayout] = {}
    for header in dict.fromkeys(d.header for d in definitions.values()):
        here = {name: d for name, d in definitions.items() if d.header == header}
        laid_out = _compiler_layouts(tree, here, staged, cpp, limits, configs or {})
        if isinstance(laid_out, str):
            laid_out = {name: read_layout(d, f"laid out by tdxproof's struct reader (the C compiler could not "
                                             f"compile the header: {laid_out})") for name, d in here.items()}
        layouts.update(laid_out)
    return {name: layouts[name] for name in names if name in layouts}


def _compiler_layouts(tree: KernelTree, definitions: Mapping[str, Definition], staged: Search,
                      cpp: str | None, limits: Limits, configs: Mapping[str, bool]) -> dict[str, StructLayout] | str:
    """The layouts as the C compiler computes them, or why it could not."""
    lines = [f"#include <{name}>" for name in LAYOUT_PRELUDE if Path(tree.source, "include", name).is_file()]
    lines += [f'#include "{os.path.abspath(h)}"' for h in dict.fromkeys(d.header for d in definitions.values())]
    lines += ['#define TDXPROOF_VALUE(key, value) __asm__ volatile("\\n.ascii \\"tdxproof-value " key '
              '" %c0\\"" : : "i" ((unsigned long)(value)))', "void tdxproof_layouts(void);",
              "void tdxproof_layouts(void)", "{"]
    for name, definition in definitions.items():
        if isinstance(definition.members, SourceError):
            return definition.members.message
        lines.append(f'\tTDXPROOF_VALUE("{name} size", sizeof(struct {name}));')
        for member in definition.members:
            lines.append(f'\tTDXPROOF_VALUE("{name} {member.name} offset", '
                         f'__builtin_offsetof(struct {name}, {member.name}));')
            lines.append(f'\tTDXPROOF_VALUE("{name} {member.name} size", '
                         f'sizeof(((struct {name} *)0)->{member.name}));')
    lines.append("}")
    with tempfile.TemporaryDirectory(prefix="tdxproof-layout-") as work:
        source = os.path.join(work, "layouts.c")
        Path(source).write_text("\n".join(lines) + "\n", encoding="utf-8")
        command = _c_command([COMPILER, "-S", "-o", "-", "-w", "-O0"], staged, configs, ["-x", "c", source], tree)
        if shutil.which(COMPILER) is None:
            return f"no C compiler {COMPILER!r}"
        status, stdout, stderr = run_preprocessor(command, source, limits)
    if status != 0:
        return _compiler_error(stderr)
    values = {key: int(number) for key, number in
              re.findall(r'\.ascii\s+"tdxproof-value ([\w ]+?) \$?(\d+)"', stdout.decode("utf-8", "replace"))}
    layouts = {}
    for name, definition in definitions.items():
        try:
            fields = tuple(StructField(m.name, values[f"{name} {m.name} offset"], values[f"{name} {m.name} size"])
                           for m in definition.members)
            layouts[name] = StructLayout(name, fields, values[f"{name} size"], "laid out by cc", definition.origin)
        except KeyError as missing:
            return f"its output lacks the value {missing}"
    return layouts


# --- prototypes --------------------------------------------------------------------------

_TOKEN = re.compile(r'[A-Za-z_]\w*|\d\w*|"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|\.\.\.|\S')
_SKIPPED_WORDS = {"extern", "static", "inline", "__inline", "__inline__", "__extension__", "register"}
_TYPE_WORDS = {"int", "long", "short", "char", "unsigned", "signed", "void", "float", "double", "_Bool",
               "const", "volatile"}


def _tokens(lines: Sequence[SourceLine], header: str) -> list[tuple[str, Origin]]:
    tokens = []
    for line in lines:
        if os.path.normpath(line.origin.file) != header:
            continue
        for match in _TOKEN.finditer(line.text):
            tokens.append((match.group(0), Origin(display(header), line.origin.line, match.start() + 1)))
    return tokens


def _statements(tokens: list[tuple[str, Origin]]) -> Iterable[list[tuple[str, Origin]]]:
    """Top-level declarations (``;``-ended), function definitions dropped."""
    statement: list[tuple[str, Origin]] = []
    depth, body = 0, False
    for token in tokens:
        text = token[0]
        if depth == 0 and text == "{" and statement and statement[-1][0] == ")":
            body = True
        if text in "({[" and len(text) == 1:
            depth += 1
        elif text in ")}]" and len(text) == 1:
            depth -= 1
            if depth == 0 and text == "}" and body:
                statement, body = [], False
                continue
        if not body:
            statement.append(token)
        if depth == 0 and text == ";":
            yield statement[:-1]
            statement = []


def _without_attributes(statement: list[tuple[str, Origin]]) -> list[tuple[str, Origin]]:
    """``statement`` less ``__attribute__((...))`` and ``asm(...)`` groups."""
    out, index = [], 0
    while index < len(statement):
        if statement[index][0] in ("__attribute__", "__attribute", "__asm__", "asm", "__asm") and \
                index + 1 < len(statement) and statement[index + 1][0] == "(":
            depth, index = 0, index + 1
            while index < len(statement):
                depth += {"(": 1, ")": -1}.get(statement[index][0], 0)
                index += 1
                if depth == 0:
                    break
            continue
        out.append(statement[index])
        index += 1
    return out


def _type_text(words: Sequence[str]) -> str:
    """
    >>> _type_text(["struct", "tdx_module_args", "*"]), _type_text(["u64", "*", "*"])
    ('struct tdx_module_args *', 'u64 **')
    """
    return re.sub(r"\*\s+(?=\*)", "*", " ".join(words))


def _parameter(words: list[str]) -> Parameter:
    if "(" in words:
        return Parameter(" ".join(words))
    name = ""
    if len(words) > 1 and re.fullmatch(r"[A-Za-z_]\w*", words[-1]) and words[-1] not in _TYPE_WORDS:
        name, words = words[-1], words[:-1]
    type_ = _type_text(words)
    pointed = re.fullmatch(r"(?:const )?struct (\w+) \*", type_)
    return Parameter(type_, name, pointed.group(1) if pointed else None)


def _prototype(statement: list[tuple[str, Origin]]) -> Prototype | None:
    words = [t for t, _ in statement]
    if not words or words[0] == "typedef" or "=" in words or "{" in words:
        return None
    if words[-1] != ")" or "(" not in words:
        return None
    open_at = words.index("(")
    if open_at < 2 or not re.fullmatch(r"[A-Za-z_]\w*", words[open_at - 1]):
        return None
    inner = words[open_at + 1:-1]
    depth, parameters, current = 0, [], []
    for word in inner:
        depth += {"(": 1, ")": -1}.get(word, 0)
        if depth < 0:
            return None                        # not one parameter list: `int (*f)(void)` and the like
        if word == "," and depth == 0:
            parameters.append(current)
            current = []
        else:
            current.append(word)
    if current:
        parameters.append(current)
    if parameters == [["void"]]:
        parameters = []
    returns = [w for w in words[:open_at - 1] if w not in _SKIPPED_WORDS]
    if not returns:
        return None
    return Prototype(words[open_at - 1], _type_text(returns), tuple(_parameter(p) for p in parameters),
                     statement[open_at - 1][1])


def prototypes(tree: KernelTree, headers: Sequence[str], staged: Search, configs: Mapping[str, bool],
               cpp: str | None, limits: Limits) -> tuple[dict[str, Prototype], list[str]]:
    """The function declarations of ``headers`` (see the module doc), and
    a note for each header the C preprocessor rejected."""
    found: dict[str, Prototype] = {}
    notes = []
    words = shlex.split(cpp or DEFAULT_CPP)
    for header in headers:
        path = os.path.normpath(os.path.abspath(header))
        command = _c_command(words, staged, configs, ["-x", "c", path], tree)
        status, stdout, stderr = run_preprocessor(command, path, limits)
        if status != 0:
            notes.append(f"{display(header)} was not read for declarations: the C preprocessor failed "
                         f"({_compiler_error(stderr)})")
            continue
        lines = map_lines(stdout.decode("utf-8", "replace"), path)
        for statement in _statements(_tokens(lines, path)):
            prototype = _prototype(_without_attributes(statement))
            if prototype is not None:
                found.setdefault(prototype.name, prototype)
    return found, notes


# --- the facts of a group -----------------------------------------------------------------

def _mentioned(files: Sequence[str], command: Callable[[str], list[str]], private: str,
               limits: Limits) -> set[str]:
    """The ``CONFIG_*`` names in ``files`` and the headers they read (the
    C preprocessor's dependency list; the generated files left out)."""
    read = set(files)
    for path in files:
        words = command(path)
        status, stdout, _ = run_preprocessor([*words[:-1], "-M", "-MG", words[-1]], path, limits)
        if status == 0:
            read.update(word for word in stdout.decode("utf-8", "replace").replace("\\\n", " ").split()
                        if not word.endswith(":"))
    names: set[str] = set()
    for path in read:
        if os.path.abspath(path).startswith(os.path.abspath(private) + os.sep) or not os.path.isfile(path):
            continue
        try:
            text = _without_comments(Path(path).read_text(encoding="utf-8", errors="replace"))
            names.update(re.findall(r"\b" + _CONFIG_NAME, text))
        except OSError:
            pass
    return names


def tree_configs(tree: KernelTree, files: Sequence[str], given: Mapping[str, bool]) -> dict[str, ConfigValue]:
    """The options the command line sets (``given``: ``--config``) and those
    Kbuild needs to build ``files`` that the configuration does not mention,
    with their sources."""
    origin, config = read_config(tree)
    values = {}
    for file in files:
        for name, where in build_options(tree.source, file):
            if name not in config and name not in values:
                values[name] = ConfigValue(True, f"builds {display(file)}: {where}", "y")
    for name, enabled in given.items():
        values[name] = ConfigValue(enabled, "--config")
    return values


def tree_facts(tree: KernelTree, files: Sequence[str], configs: Mapping[str, bool],
               command: Callable[[str], list[str]], cpp: str | None = None,
               limits: Limits = Limits()) -> TreeFacts:
    """The facts of the group of ``files`` in ``tree`` under ``configs``
    (the command line's and the build options, :func:`tree_configs`);
    ``command(path)`` is the preprocessor command of one of ``files``."""
    key = ("facts", tree, tuple(files), tuple(sorted(configs.items())), cpp, limits)
    return _remembered(key, lambda: _facts(tree, files, configs, command, cpp, limits))


def _facts(tree: KernelTree, files: Sequence[str], configs: Mapping[str, bool],
           command: Callable[[str], list[str]], cpp: str | None, limits: Limits) -> TreeFacts:
    staged = search(tree, configs, cpp, limits)
    origin, config = read_config(tree)
    where = display(origin) if origin else None
    values: dict[str, ConfigValue] = {}
    for name in sorted(_mentioned(files, command, staged.private, limits) | set(configs)):
        if name in configs:
            continue
        if name in config:
            values[name] = _config_value(config[name][0], f"from {where}")
        else:
            values[name] = ConfigValue(False, f"not set in {where}" if where else
                                       "the tree has no configuration (no .config, no autoconf.h)", "n")
    _, offsets, structs = _generated(tree, cpp, limits)
    structs = dict(structs)
    headers = tdx_headers(tree.source, files)
    declared, notes = prototypes(tree, headers, staged, configs, cpp, limits)
    pointed = sorted({p.points_to for proto in declared.values() for p in proto.parameters if p.points_to})
    wanted = [name for name in pointed if name not in structs]
    if wanted:
        definable = {name for header in headers for name in _definitions(header, wanted)}
        structs.update(struct_layouts(tree, [n for n in wanted if n in definable], staged, files, cpp, limits,
                                      configs))
    return TreeFacts(tree.source, declared, structs, offsets, values, build=tree.build, notes=tuple(notes))


def assumption_texts(facts: TreeFacts, configs: Mapping[str, bool], toggled: Iterable[str] = ()) -> list[str]:
    """The facts as assumption lines of a result checked under ``configs``
    (its options' ``configs``), of which ``toggled`` came from ``--matrix``:
    the tree, the configuration by source, the asm-offsets by source.

    >>> facts = TreeFacts("/k", config={"CONFIG_A": ConfigValue(True, "from .config", "y"),
    ...                                 "CONFIG_B": ConfigValue(False, "not set in .config", "n")},
    ...                   offsets={"TDX_MODULE_rcx": Value(0, "g.h"), "TDX_MODULE_rdx": Value(8, "g.h")}, build="/k")
    >>> for text in assumption_texts(facts, {"CONFIG_C": True}, ["CONFIG_C"]): print(text)
    kernel tree /k: its own headers, configuration and asm-offsets, preprocessed as Kbuild does (no shims)
    CONFIG_A=y (from .config)
    CONFIG_B=n (not set in .config)
    CONFIG_C=y (--matrix)
    asm-offsets TDX_MODULE_rcx=0, TDX_MODULE_rdx=8 (g.h)
    """
    build = f", built in {display(facts.build)}" if facts.build and facts.build != facts.root else ""
    texts = [f"kernel tree {display(facts.root)}{build}: its own headers, configuration and asm-offsets, "
             f"preprocessed as Kbuild does (no shims)"]
    toggled = set(toggled)
    by_source: dict[str, list[str]] = {}
    for name in sorted(set(facts.config) | set(toggled)):
        if name in toggled:
            value = ConfigValue(configs[name], "--matrix")
        else:
            value = facts.config[name]
        by_source.setdefault(value.source, []).append(value.text(name))
    texts += [f"{', '.join(names)} ({source})" for source, names in by_source.items()]
    offsets: dict[str, list[str]] = {}
    for symbol, value in facts.offsets.items():
        offsets.setdefault(value.source, []).append(f"{symbol}={value.value}")
    texts += [f"asm-offsets {', '.join(names)} ({source})" for source, names in offsets.items()]
    return texts + list(facts.notes)
