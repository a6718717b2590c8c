"""LoRA on whole models: pick Linear layers by name, wrap them in LoRALinear, freeze the rest,
and save or load adapters on their own (a few hundred kB instead of the whole model).

    report = apply_lora(model, ["q_proj", "v_proj"], r=8, alpha=16)   # or a regex, or "all-linear"
    print(report)                      # wrapped layers, trainable parameters (count and %)
    ... train ...                      # only lora_A / lora_B of the active adapter receive gradients
    save_adapter(model, "runs/code-lora")          # adapter.safetensors + adapter_config.json
    load_adapter(fresh_base_model, "runs/code-lora")
    merge_lora(model)                  # W += (alpha / r) B A in every wrapped layer: no extra cost

Per wrapped layer (see minilm/nn/lora.py):  y = x W^T + b + s * drop(x) A^T B^T,  s = alpha / r
(rslora: s = alpha / sqrt(r)); A (r, in), B (out, r), B starts at zero, so the model starts out
exactly as the base.

Targets: a list of name suffixes ("q_proj" matches "blocks.0.attn.q_proj"; a full dotted name
matches itself), a regular expression matched against the whole dotted name (re.fullmatch), or
"all-linear" (every Linear layer). An adapter records a hash of the base model's config (the
class name plus dataclasses.asdict(model.config), without the runtime-only "backend" option), and
loading refuses an adapter made for another base. The hash identifies the architecture and its
vocabulary, not the exact weights: two checkpoints of the same config share it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .checkpoint import atomic_write_json, load_tensors, save_tensors
from .errors import MinilmError, NonFiniteError, ShapeError
from .nn.layers import Linear
from .nn.lora import LoRALinear

ADAPTER_FILE = "adapter.safetensors"
CONFIG_FILE = "adapter_config.json"
ALL_LINEAR = "all-linear"
RUNTIME_CONFIG_KEYS = ("backend",)        # settings that do not change the weights: left out of the hash


@dataclass
class LoRAReport:
    """What apply_lora (or add_adapter) did: wrapped layer names and the trainable share."""
    adapter: str
    wrapped: list[str]
    r: int
    alpha: float
    trainable: int
    total: int
    per_layer: dict = field(default_factory=dict)        # name -> LoRA parameters in that layer

    @property
    def percent(self) -> float:
        return 100.0 * self.trainable / self.total if self.total else 0.0

    def __str__(self):
        lines = [f"LoRA adapter {self.adapter!r}: r={self.r}, alpha={self.alpha}, {len(self.wrapped)} layer(s) wrapped; "
                 f"trainable {self.trainable:,} of {self.total:,} parameters ({self.percent:.2f}%)"]
        lines += [f"  {name}: +{self.per_layer[name]:,}" for name in self.wrapped]
        return "\n".join(lines)


# ----- finding layers ---------------------------------------------------------------------------
def _parent_and_attr(model, name: str):
    """The module holding `name` ("blocks.0.attn.q_proj" -> (model.blocks[0].attn, "q_proj"))."""
    *path, attr = name.split(".")
    parent = model
    for part in path:
        parent = parent._modules[part]
    return parent, attr


def linear_layer_names(model) -> list[str]:
    """Dotted names of the Linear layers a user can target (the base inside a LoRALinear is not one)."""
    names, inside_lora = [], set()
    for name, module in model.named_modules():
        if isinstance(module, LoRALinear):
            inside_lora.add(f"{name}.base")
            names.append(name)
        elif isinstance(module, Linear) and name not in inside_lora:
            names.append(name)
    return names


def lora_layers(model) -> dict[str, LoRALinear]:
    """name -> LoRALinear, in model order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


def match_targets(names: list[str], target_modules) -> list[str]:
    """The names selected by a suffix list, a regex (whole-name match) or "all-linear"."""
    if isinstance(target_modules, str):
        if target_modules == ALL_LINEAR:
            return list(names)
        try:
            pattern = re.compile(target_modules)
        except re.error as error:
            raise MinilmError(f"apply_lora: target_modules {target_modules!r} is not a valid regular expression "
                              f"({error})") from None
        return [n for n in names if pattern.fullmatch(n)]
    suffixes = list(target_modules)
    if not suffixes or not all(isinstance(s, str) and s for s in suffixes):
        raise MinilmError(f"apply_lora: target_modules must be a non-empty list of names, a regex or "
                          f"{ALL_LINEAR!r}; got {target_modules!r}")
    return [n for n in names if any(n == s or n.endswith("." + s) for s in suffixes)]


def _no_match_error(target_modules, names) -> MinilmError:
    return MinilmError(f"apply_lora: target_modules {target_modules!r} matches no Linear layer; "
                       f"available: {', '.join(names) or '(none)'}")


def _report(model, adapter: str, names: list[str], r: int, alpha: float) -> LoRAReport:
    layers = lora_layers(model)
    per_layer = {n: sum(p.size for p in layers[n].lora_pair(adapter)) for n in names}
    return LoRAReport(adapter, list(names), r, alpha, model.num_parameters(trainable_only=True),
                      model.num_parameters(), per_layer)


# ----- applying, switching, removing ---------------------------------------------------------------
def apply_lora(model, target_modules=("q_proj", "v_proj"), r: int = 8, alpha: float = 16.0, dropout: float = 0.0,
               rslora: bool = False, adapter: str = "default", seed: int = 0) -> LoRAReport:
    """Wrap the matching Linear layers in LoRALinear (in place), freeze everything else.

    Layer i (in model order) draws its lora_A from seed + i, so equal-shaped layers differ."""
    names = linear_layer_names(model)
    chosen = match_targets(names, target_modules)
    if not chosen:
        raise _no_match_error(target_modules, names)
    wrapped_already = [n for n in chosen if n in lora_layers(model)]
    if wrapped_already:
        raise MinilmError(f"apply_lora: {', '.join(wrapped_already)} already carry LoRA; use "
                          f"add_adapter(model, name, ...) for a second adapter")
    model.requires_grad_(False)
    for layer in lora_layers(model).values():            # adapters applied earlier stay trainable if active
        if layer.merged is None:
            layer.set_adapter(layer.active)
    for i, name in enumerate(chosen):
        parent, attr = _parent_and_attr(model, name)
        wrapped = LoRALinear(getattr(parent, attr), r=r, alpha=alpha, dropout=dropout, rslora=rslora,
                             seed=seed + i, adapter=adapter)
        wrapped.train(parent.training)
        setattr(parent, attr, wrapped)                  # ModuleList children are attributes "0", "1", ...
    return _report(model, adapter, chosen, r, alpha)


def _require_lora(model, what: str) -> dict[str, LoRALinear]:
    layers = lora_layers(model)
    if not layers:
        raise MinilmError(f"{what}: the model has no LoRA layers; call apply_lora(model, ...) first")
    return layers


def add_adapter(model, name: str, r: int = 8, alpha: float = 16.0, dropout: float = 0.0, rslora: bool = False,
                seed: int = 0, layers: list[str] | None = None) -> LoRAReport:
    """A second (third...) adapter on the already wrapped layers (or those named); it becomes active."""
    wrapped = _require_lora(model, "add_adapter")
    chosen = list(wrapped) if layers is None else layers
    unknown = [n for n in chosen if n not in wrapped]
    if unknown:
        raise MinilmError(f"add_adapter: {unknown} carry no LoRA; wrapped layers: {list(wrapped)}")
    for i, layer_name in enumerate(chosen):
        wrapped[layer_name].add_adapter(name, r, alpha, dropout, rslora, seed + i)
    set_adapter(model, name)
    return _report(model, name, chosen, r, alpha)


def set_adapter(model, name: str | None) -> None:
    """Make adapter `name` active (and the only trainable one) in every wrapped layer holding it;
    layers without it run their base. None: every layer runs its base (see disable_adapters)."""
    layers = _require_lora(model, "set_adapter")
    if name is not None and not any(name in layer.adapters for layer in layers.values()):
        known = sorted({a for layer in layers.values() for a in layer.adapters})
        raise MinilmError(f"set_adapter: no adapter {name!r}; the model has {known}")
    for layer in layers.values():
        layer.set_adapter(name if name in layer.adapters else None)


def disable_adapters(model) -> None:
    """Run the base model only (the adapters stay, frozen; set_adapter(model, name) brings one back)."""
    set_adapter(model, None)


def active_adapter(model) -> str | None:
    actives = {layer.active for layer in lora_layers(model).values()} - {None}
    return actives.pop() if len(actives) == 1 else None


def delete_adapter(model, name: str) -> None:
    layers = _require_lora(model, "delete_adapter")
    holders = [layer for layer in layers.values() if name in layer.adapters]
    if not holders:
        raise MinilmError(f"delete_adapter: no adapter {name!r}")
    for layer in holders:
        layer.delete_adapter(name)


def merge_lora(model) -> None:
    """Fold the active adapter into every base weight (W += s B A). All or nothing: an adapter
    holding NaN/inf anywhere leaves the model unmerged and raises NonFiniteError."""
    layers = _require_lora(model, "merge_lora")
    for name, layer in layers.items():
        if layer.merged is None and layer.active is not None:
            a, b = layer.lora_pair()
            if not (np.isfinite(a.data).all() and np.isfinite(b.data).all()):
                raise NonFiniteError(f"merge_lora: {name} (adapter {layer.active!r}) holds NaN/inf; refusing to merge")
    for layer in layers.values():
        layer.merge()


def unmerge_lora(model) -> None:
    for layer in _require_lora(model, "unmerge_lora").values():
        layer.unmerge()


# ----- adapter files -------------------------------------------------------------------------------
def base_config_hash(model) -> str:
    """sha256 of the canonical JSON of {model: class name, config: asdict(model.config) - runtime keys}."""
    config = getattr(model, "config", None)
    if config is None or not dataclasses.is_dataclass(config):
        raise MinilmError(f"adapters need a model with a dataclass `config`; {type(model).__name__} has none")
    fields = {k: v for k, v in dataclasses.asdict(config).items() if k not in RUNTIME_CONFIG_KEYS}
    canonical = json.dumps({"model": type(model).__name__, "config": fields}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def save_adapter(model, directory, name: str | None = None) -> int:
    """Write DIR/adapter.safetensors (that adapter's lora_A / lora_B per layer, named
    `LAYER.lora_A`, `LAYER.lora_B`) and DIR/adapter_config.json, atomically; return the tensor file's size."""
    layers = _require_lora(model, "save_adapter")
    name = name or active_adapter(model)
    if name is None:
        raise MinilmError("save_adapter: no adapter is active; name the one to save")
    holders = {n: layer for n, layer in layers.items() if name in layer.adapters}
    if not holders:
        raise MinilmError(f"save_adapter: no adapter {name!r}")
    tensors, settings = {}, None
    for layer_name, layer in holders.items():
        a, b = layer.lora_pair(name)
        tensors[f"{layer_name}.lora_A"], tensors[f"{layer_name}.lora_B"] = a.data, b.data
        settings = settings or layer.adapters[name]
        if {k: layer.adapters[name][k] for k in ("r", "alpha", "dropout", "rslora")} != \
                {k: settings[k] for k in ("r", "alpha", "dropout", "rslora")}:
            raise MinilmError(f"save_adapter: adapter {name!r} has different settings in {layer_name}; "
                              "one adapter file holds one r/alpha/dropout/rslora")
    config = {"format": "minilm-lora", "version": 1, "adapter": name, "base_model": type(model).__name__,
              "base_config_hash": base_config_hash(model), "targets": list(holders),
              "r": settings["r"], "alpha": settings["alpha"], "dropout": settings["dropout"],
              "rslora": settings["rslora"], "dtype": str(next(iter(tensors.values())).dtype)}
    directory = Path(directory)
    size = save_tensors(directory / ADAPTER_FILE, tensors, {"adapter_config": config})
    atomic_write_json(directory / CONFIG_FILE, config)
    return size


def read_adapter_config(directory) -> dict:
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise MinilmError(f"no {CONFIG_FILE} in {directory} (is it a `save_adapter` / `minilm finetune --lora` folder?)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise MinilmError(f"{path}: not valid JSON ({error})") from None


def load_adapter(model, directory, name: str | None = None) -> LoRAReport:
    """Check the base matches, wrap the same layers if needed, load the tensors (names and shapes
    checked) and activate the adapter (under `name`, default: the name it was saved with)."""
    config = read_adapter_config(directory)
    expected = base_config_hash(model)
    if config.get("base_config_hash") != expected:
        raise MinilmError(f"load_adapter: {directory} was trained on another base model (config hash "
                          f"{str(config.get('base_config_hash'))[:12]}..., base model {config.get('base_model')}); "
                          f"this {type(model).__name__}'s config hashes to {expected[:12]}...")
    tensors, _ = load_tensors(Path(directory) / ADAPTER_FILE)
    name = name or config["adapter"]
    targets = config["targets"]
    expected_names = {f"{t}.{part}" for t in targets for part in ("lora_A", "lora_B")}
    if set(tensors) != expected_names:
        raise MinilmError(f"load_adapter: {ADAPTER_FILE} holds {sorted(set(tensors) - expected_names)} unexpected "
                          f"and lacks {sorted(expected_names - set(tensors))} tensors")
    options = dict(r=config["r"], alpha=config["alpha"], dropout=config["dropout"], rslora=config["rslora"])
    layers = lora_layers(model)
    if not layers:
        apply_lora(model, targets, adapter=name, **options)
    else:
        missing = [t for t in targets if t not in layers]
        if missing:
            raise MinilmError(f"load_adapter: the model has LoRA on {list(layers)} but the adapter needs {missing}")
        new = [t for t in targets if name not in layers[t].adapters]
        if new:
            add_adapter(model, name, layers=new, **options)
    layers = lora_layers(model)
    for target in targets:
        a, b = layers[target].lora_pair(name)
        for param, key in ((a, f"{target}.lora_A"), (b, f"{target}.lora_B")):
            value = tensors[key]
            if value.shape != param.shape:
                raise ShapeError(f"load_adapter: {key} must be {param.shape}; the file holds {value.shape}")
            param.data[...] = value.astype(param.dtype, copy=False)
    set_adapter(model, name)
    return _report(model, name, targets, config["r"], config["alpha"])


def parse_lora_spec(spec: str) -> dict:
    """'r=8,alpha=16,targets=q_proj,v_proj' -> {'r': 8, 'alpha': 16.0, 'target_modules': [...]}.
    Keys: r, alpha, dropout, rslora, targets (the rest of the string after `targets=`: a comma list,
    "all-linear", or `re:PATTERN` for a regular expression)."""
    options: dict = {}
    rest = spec.strip()
    if "targets=" in rest:
        rest, targets = rest.split("targets=", 1)
        targets = targets.strip()
        if targets.startswith("re:"):
            options["target_modules"] = targets[3:]
        elif targets == ALL_LINEAR:
            options["target_modules"] = ALL_LINEAR
        else:
            options["target_modules"] = [t.strip() for t in targets.split(",") if t.strip()]
    converters = {"r": int, "alpha": float, "dropout": float,
                  "rslora": lambda v: v.lower() in ("1", "true", "yes")}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, _, value = item.partition("=")
        if key not in converters or not value:
            raise MinilmError(f"--lora: cannot read {item!r}; expected r=INT,alpha=FLOAT,dropout=FLOAT,rslora=BOOL,"
                              f"targets=NAME[,NAME...] (targets last)")
        try:
            options[key] = converters[key](value)
        except ValueError:
            raise MinilmError(f"--lora: {key}={value!r} is not a valid value") from None
    return options
