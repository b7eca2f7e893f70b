"""The unpickler of a torch-distributed checkpoint's ``.metadata``: it builds only fresh plain
data records and values, and can neither run code nor change any object that existed before it
started (a class, a function, a module, an enum member, a dtype).

``pickle.Unpickler`` restricted by ``find_class`` alone is not enough: with only allowed
names, a pickle can still ``BUILD`` (``setattr``) onto the allowed classes themselves -- e.g.
replace ``pathlib.PosixPath.is_relative_to`` in the whole server -- or onto the singletons it
gets back from them. So this unpickler runs on Python's own pure-Python unpickler with every
opcode that calls or mutates replaced by a checked version:

* names (``GLOBAL``, ``STACK_GLOBAL``): only :func:`allowed_globals`, looked up exactly (no
  dotted ``getattr`` chains); ``EXT*`` (copyreg's registry), ``INST``/``OBJ`` and persistent
  ids are refused;
* ``NEWOBJ``/``NEWOBJ_EX``: only on the record classes (:data:`RECORD_CLASSES`), with no
  arguments -- an empty fresh instance;
* ``BUILD``: only on such a fresh instance, once, from a dict of plain field names (or, for
  ``TensorProperties``, the tuple its own ``__setstate__`` takes);
* ``REDUCE``: only the value constructors (:data:`VALUE_CONSTRUCTORS`: ``torch.Size``,
  ``OrderedDict``, ``set``, ``frozenset``, paths, the memory-format enums, torch's layout
  lookup) with plain arguments;
* ``APPEND(S)`` / ``SETITEM(S)`` / ``ADDITEMS``: only on lists / dicts / sets.

Everything else raises :class:`UnsafeCheckpointError` naming the file and what it asked for.
"""
from __future__ import annotations

import collections
import enum
import pickle
from typing import Dict, Tuple

import torch

from .checkpoint_errors import UnsafeCheckpointError

#: (module, name) of the classes whose instances the metadata is made of (filled by BUILD)
RECORD_CLASSES = (
    ("torch.distributed.checkpoint.metadata", "Metadata"),
    ("torch.distributed.checkpoint.metadata", "MetadataIndex"),
    ("torch.distributed.checkpoint.metadata", "TensorStorageMetadata"),
    ("torch.distributed.checkpoint.metadata", "BytesStorageMetadata"),
    ("torch.distributed.checkpoint.metadata", "ChunkStorageMetadata"),
    ("torch.distributed.checkpoint.metadata", "TensorProperties"),
    ("torch.distributed.checkpoint.metadata", "StorageMeta"),
    ("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
    ("torch.distributed.checkpoint.filesystem", "_StoragePrefix"),
    # older torch pickled TensorProperties from the sharded-tensor module
    ("torch.distributed._shard.sharded_tensor.metadata", "TensorProperties"),
)
#: (module, name) of the callables REDUCE may call, each with plain arguments only
VALUE_CONSTRUCTORS = (
    ("torch", "Size"), ("collections", "OrderedDict"), ("builtins", "set"),
    ("builtins", "frozenset"), ("torch.serialization", "_get_layout"),
    ("torch.distributed.checkpoint.metadata", "_MEM_FORMAT_ENCODING"),
    ("torch.distributed._shard.sharded_tensor.metadata", "MEM_FORMAT_ENCODING"),
) + tuple(("pathlib", n) for n in ("PosixPath", "PurePosixPath", "WindowsPath",
                                   "PureWindowsPath", "Path"))

def _lookup(module: str, name: str):
    import importlib
    try:
        mod = importlib.import_module(module)
    except ImportError:  # pragma: no cover - a torch without this module
        return None
    return vars(mod).get(name)


def allowed_globals() -> Dict[Tuple[str, str], object]:
    """``(module, name) -> object`` for every name a ``.metadata`` pickle may use: the record
    classes, the value constructors, and the dtypes (values)."""
    allowed = {}
    for key in RECORD_CLASSES + VALUE_CONSTRUCTORS:
        obj = _lookup(*key)
        if obj is not None:
            allowed[key] = obj
    for n, v in vars(torch).items():
        if isinstance(v, torch.dtype):
            allowed[("torch", n)] = v
    return allowed


def _ints(value) -> bool:
    return isinstance(value, (tuple, list)) and all(
        type(v) is int for v in value)


class MetadataUnpickler(pickle._Unpickler):
    """Unpickler for a torch-distributed ``.metadata`` file (see the module docstring).
    ``source`` names the file in every refusal."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, source: str = ".metadata"):
        super().__init__(file)
        self._allowed = allowed_globals()
        self._records = {id(self._allowed[k]) for k in RECORD_CLASSES if k in self._allowed}
        self._constructors = {id(self._allowed[k]): k for k in VALUE_CONSTRUCTORS
                              if k in self._allowed}
        self._source = source
        self._fresh: Dict[int, object] = {}     # records made here and not yet built

    # -- refusals ---------------------------------------------------------------------------
    def _refuse(self, what: str):
        raise UnsafeCheckpointError(
            f"refused to read {self._source}: it asks to {what}, which checkpoint metadata "
            f"never does (loading it could run code or change the running program). Only "
            f"torch-distributed checkpoint metadata is accepted there; re-save the checkpoint "
            f"where you trust it, or convert it to .safetensors.")

    @staticmethod
    def _name(obj) -> str:
        if isinstance(obj, type) or callable(obj):
            return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', '?')}"
        return f"a {type(obj).__module__}.{type(obj).__qualname__} value"

    # -- names ------------------------------------------------------------------------------
    def find_class(self, module, name):
        obj = self._allowed.get((module, name))
        if obj is None:
            self._refuse(f"build {module}.{name}")
        return obj

    def persistent_load(self, pid):
        self._refuse("resolve persistent references")

    def get_extension(self, code):
        self._refuse(f"use copyreg extension code {code}")

    def load_inst(self):
        self._refuse("call a class the old way (INST)")
    dispatch[pickle.INST[0]] = load_inst

    def load_obj(self):
        self._refuse("call a class the old way (OBJ)")
    dispatch[pickle.OBJ[0]] = load_obj

    # -- creating objects -------------------------------------------------------------------
    def _new_record(self, cls, args, kwargs):
        if id(cls) not in self._records or not isinstance(cls, type):
            self._refuse(f"create {self._name(cls)} with __new__")
        if args or kwargs:
            self._refuse(f"pass arguments to {self._name(cls)}.__new__")
        obj = cls.__new__(cls)
        self._fresh[id(obj)] = obj
        self.append(obj)

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        self._new_record(cls, args, None)
    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self):
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self._new_record(cls, args, kwargs)
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    def load_reduce(self):
        args = self.stack.pop()
        func = self.stack[-1]
        key = self._constructors.get(id(func))
        if key is None:
            self._refuse(f"call {self._name(func)}")
        if type(args) is not tuple:
            self._refuse(f"call {key[0]}.{key[1]} with {self._name(args)}")
        self.stack[-1] = self._construct(func, key, args)
    dispatch[pickle.REDUCE[0]] = load_reduce

    def _construct(self, func, key, args):
        module, name = key
        ok = False
        if name == "Size":
            ok = len(args) == 1 and _ints(args[0])
        elif name == "OrderedDict":
            ok = not args or (len(args) == 1 and isinstance(args[0], list) and all(
                type(p) is tuple and len(p) == 2 for p in args[0]))
        elif name in ("set", "frozenset"):
            ok = not args or (len(args) == 1 and type(args[0]) in (list, tuple))
        elif name == "_get_layout":
            ok = len(args) == 1 and type(args[0]) is str
        elif module == "pathlib":
            ok = all(type(a) is str for a in args)
        else:  # the memory-format enums: an existing member by its value
            ok = len(args) == 1 and type(args[0]) is int
        if not ok:
            self._refuse(f"call {module}.{name} with arguments {args!r:.80}")
        return func(*args)

    # -- filling objects --------------------------------------------------------------------
    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if self._fresh.pop(id(inst), None) is not inst:
            self._refuse(f"set attributes of {self._name(inst)}" + (
                " (a class)" if isinstance(inst, type) else " (not a record it just made)"))
        cls = type(inst)
        if "__setstate__" in vars(cls):     # TensorProperties: its own 5-tuple
            if not (type(state) is tuple and len(state) == 5
                    and isinstance(state[0], torch.dtype) and isinstance(state[1], torch.layout)
                    and type(state[2]) is bool and isinstance(state[3], enum.Enum)
                    and type(state[4]) is bool):
                self._refuse(f"give {self._name(cls)} the state {state!r:.80}")
            cls.__setstate__(inst, state)
            return
        if type(state) is tuple and len(state) == 2 and state[1] is None:
            state = state[0]
        if type(state) is not dict or not all(
                type(k) is str and k.isidentifier() and not k.startswith("__") for k in state):
            self._refuse(f"give {self._name(cls)} the state {state!r:.80}")
        vars(inst).update(state)
    dispatch[pickle.BUILD[0]] = load_build

    def _target(self, kinds, what):
        target = self.stack[-1]
        if type(target) not in kinds:
            self._refuse(f"{what} {self._name(target)}")
        return target

    def load_append(self):
        value = self.stack.pop()
        self._target((list,), "append to").append(value)
    dispatch[pickle.APPEND[0]] = load_append

    def load_appends(self):
        items = self.pop_mark()
        self._target((list,), "append to").extend(items)
    dispatch[pickle.APPENDS[0]] = load_appends

    def load_setitem(self):
        value = self.stack.pop()
        key = self.stack.pop()
        self._target((dict, collections.OrderedDict), "set items of")[key] = value
    dispatch[pickle.SETITEM[0]] = load_setitem

    def load_setitems(self):
        items = self.pop_mark()
        target = self._target((dict, collections.OrderedDict), "set items of")
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]
    dispatch[pickle.SETITEMS[0]] = load_setitems

    def load_additems(self):
        items = self.pop_mark()
        self._target((set,), "add items to").update(items)
    dispatch[pickle.ADDITEMS[0]] = load_additems

