"""Router: send each input through one of several module stacks, chosen by task and/or modality.

Asymmetric models (a cheap query encoder, a strong document encoder) and cross-modal models (one encoder per
modality) are one Router as the first module. ``encode_query`` / ``encode_document`` pass ``task``; the modality
is inferred from the inputs. The folder layout is sentence-transformers' (``router_config.json``, one subfolder
per routed module), and the legacy ``Asym`` layout (``config.json``, dict inputs ``{"query": text}``) loads too.
"""

from __future__ import annotations

import ast
import logging
import os
from pathlib import Path
from typing import Any, cast

from torch import nn

from embedstack.errors import ModelFormatError
from embedstack.fileio import write_json
from embedstack.inputs import MODALITY_KEYS, Modality, format_modality, infer_batch_modality
from embedstack.modules.base import InputModule, module_dir
from embedstack.modules.module_io import LoadOptions, load_module, save_module
from embedstack.registry import ST, register_module

logger = logging.getLogger(__name__)

RouteKey = tuple[str | None, Modality | None]


@register_module(
    f"{ST}.base.modules.router.Router", legacy=True, aliases=(f"{ST}.models.Asym", f"{ST}.models.Asym.Asym")
)
class Router(InputModule):
    """Routes features through ``sub_modules[route]``.

    Args:
        sub_modules: Route name -> the modules of that route (the first is its input module).
        default_route: The route when neither task nor modality picks one (default: the first, with
            ``allow_empty_key``).
        allow_empty_key: Let ``default_route`` default to the first route.
        route_mappings: ``(task, modality) -> route``; ``None`` in either place matches anything. Looked up as
            (task, modality), (task, None), (None, modality), (None, None), then a route named like the task,
            then one named like the modality, then ``default_route``.

    Example:
        >>> from tokenizers import Tokenizer
        >>> from embedstack import SentenceTransformer
        >>> from embedstack.modules import Normalize, Pooling, StaticEmbedding, Transformer
        >>> static = StaticEmbedding(Tokenizer.from_file(f"{tiny_bert_path}/tokenizer.json"), embedding_dim=32)
        >>> transformer, pooling = Transformer(tiny_bert_path), Pooling(32)
        >>> router = Router.for_query_document(query_modules=[static], document_modules=[transformer, pooling])
        >>> model = SentenceTransformer(modules=[router, Normalize()])
        >>> model.encode_query("capital of France?").shape  # through the static embedding
        (32,)
        >>> model.encode_document(["Paris is the capital of France."]).shape  # through the transformer
        (1, 32)
    """

    config_keys: list[str] = ["default_route", "allow_empty_key", "route_mappings"]
    config_file_name = "router_config.json"
    save_in_root: bool = True  # as the first module, its config and route folders go in the model root
    checks_own_inputs: bool = True  # routes check their inputs; legacy {task: text} dicts are not a modality
    forward_kwargs: set[str] = {"task", "modality"}  # an instance adds the keywords its routed modules take

    def __init__(
        self,
        sub_modules: dict[str, list[nn.Module]],
        default_route: str | None = None,
        allow_empty_key: bool = True,
        route_mappings: dict[RouteKey, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if not sub_modules:
            raise ValueError(
                "The sub_modules dictionary cannot be empty: a Router needs at least one route (a name -> its "
                "modules), e.g. Router.for_query_document(query_modules, document_modules)."
            )
        self.sub_modules = nn.ModuleDict(
            {
                name: modules if isinstance(modules, nn.Sequential) else nn.Sequential(*modules)
                for name, modules in sub_modules.items()
            }
        )
        if default_route is not None and default_route not in self.sub_modules:
            raise ValueError(
                f"Default route {default_route!r} not found in route keys: {list(self.sub_modules)}. Pass one of "
                "them, or None for the first route."
            )
        for key, route in (route_mappings or {}).items():
            if route not in self.sub_modules:
                raise ValueError(
                    f"route_mappings contains mapping to {route!r} which is not in sub_modules (key {key}). "
                    f"Available routes: {list(self.sub_modules)}; map the key to one of them."
                )
        if allow_empty_key and default_route is None:
            default_route = next(iter(self.sub_modules))
        self.default_route = default_route
        self.allow_empty_key = allow_empty_key
        self.route_mappings = {
            (task, tuple(sorted(modality)) if isinstance(modality, tuple) else modality): route
            for (task, modality), route in (route_mappings or {}).items()
        }
        # ``task`` and ``modality``, plus the ``encode`` keywords any routed module takes.
        routed = {kw for route in self._routes().values() for m in route for kw in getattr(m, "forward_kwargs", ())}
        self.forward_kwargs = type(self).forward_kwargs | routed
        self._warned_lengths: set[frozenset[int]] = set()  # max_seq_length mismatches already warned about

    @classmethod
    def for_query_document(
        cls,
        query_modules: list[nn.Module],
        document_modules: list[nn.Module],
        default_route: str | None = "document",
        allow_empty_key: bool = True,
    ) -> Router:
        """A Router with a "query" and a "document" route, for ``encode_query`` / ``encode_document``."""
        return cls(
            {"query": query_modules, "document": document_modules},
            default_route=default_route,
            allow_empty_key=allow_empty_key,
        )

    # ----- routing ----------------------------------------------------------------------------------------
    def resolve_route(self, task: str | None = None, modality: Modality | None = None) -> str:
        """The route for ``task`` and ``modality``; raises ValueError listing the routes when none fits."""
        if isinstance(modality, tuple):
            modality = tuple(sorted(modality))
        for key in ((task, modality), (task, None), (None, modality), (None, None)):
            if key in self.route_mappings:
                return self.route_mappings[key]
        if task and task in self.sub_modules:
            return task
        if isinstance(modality, str) and modality in self.sub_modules:
            return modality
        if task is not None:
            raise ValueError(
                f"No route found for task type {task!r}. Available routes: {self._routes_text()}. Pass one of "
                "these tasks, or map the task to a route with route_mappings."
            )
        if self.default_route is None:
            shown = format_modality(modality) if modality else None
            raise ValueError(
                f"Could not determine route for task=None, modality={shown!r}. Available routes: "
                f"{self._routes_text()}. Pass task= to encode (or use encode_query / encode_document), or give the "
                "Router a default_route."
            )
        return self.default_route

    def _routes_text(self) -> str:
        """The routes, as the reference lists them: "task='query' and task='document'"."""
        routes = [f"task={name!r}" for name in self.sub_modules]
        for task, modality in self.route_mappings:
            if modality is None or task is None:
                routes.append(f"task={task!r}" if modality is None else f"modality={format_modality(modality)!r}")
            else:
                routes.append(f"(task={task!r}, modality={format_modality(modality)!r})")
        return routes[0] if len(routes) == 1 else ", ".join(routes[:-1]) + " and " + routes[-1]

    def _routes(self) -> dict[str, nn.Sequential]:
        """The modules of each route, by route name (``__init__`` makes every route an ``nn.Sequential``)."""
        return cast("dict[str, nn.Sequential]", dict(self.sub_modules.items()))

    @property
    def modalities(self) -> list[Modality]:
        """Every modality some route's input module takes."""
        found = {m for route in self._routes().values() for m in getattr(route[0], "modalities", ["text"])}
        return sorted(found, key=str)

    def preprocess(
        self,
        inputs: list[Any],
        prompt: str | None = None,
        task: str | None = None,
        modality: Modality | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Features from the input module of the route that ``task`` and the inputs' modality pick.

        Legacy Asym inputs (``[{"query": text}, ...]``) name the task in their key.

        """
        if inputs and isinstance(inputs[0], dict) and task is None:
            keys = {key for item in inputs for key in item}
            if not keys & MODALITY_KEYS:  # legacy Asym input: [{"query": text}, ...]
                if len(keys) > 1:
                    raise ValueError(
                        f"You cannot pass a list of dictionaries with different task types (Asym format): got "
                        f"{sorted(keys)}. Give every input the same task key, or pass plain inputs with task=."
                    )
                task = keys.pop()
                inputs = [item[task] for item in inputs]
        if modality is None and inputs:
            try:
                modality = infer_batch_modality(inputs, self.modalities)
            except ValueError:
                modality = None
        first: Any = self._routes()[self.resolve_route(task, modality)][0]  # the route's input module
        features: dict[str, Any] = first.preprocess(inputs, prompt=prompt, task=task, **kwargs)
        features["task"] = task
        if modality is not None:
            features["modality"] = modality
        return features

    def forward(
        self, features: dict[str, Any], task: str | None = None, modality: Modality | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Run the features through the modules of their route (task and modality from the features)."""
        task = task if task is not None else features.get("task")
        modality = modality if modality is not None else features.get("modality")
        kwargs.update(task=task, modality=modality)
        for module in self._routes()[self.resolve_route(task, modality)]:
            accepted: set[str] = getattr(module, "forward_kwargs", set())
            features = module(features, **{key: value for key, value in kwargs.items() if key in accepted})
        return features

    # ----- model-facing properties ------------------------------------------------------------------------
    def get_embedding_dimension(self) -> int | None:
        """The output width of the routes (the first, when they differ), or None."""
        dimensions: list[int | None] = []
        module: Any  # any nn.Module; its class may define get_embedding_dimension
        for route in self._routes().values():
            for module in reversed(list(route)):
                if callable(getattr(type(module), "get_embedding_dimension", None)):
                    dimensions.append(module.get_embedding_dimension())
                    break
        # warned once per mismatch, not on every call
        if len(set(dimensions)) > 1 and getattr(self, "_warned_dimensions", None) != dimensions:
            self._warned_dimensions = list(dimensions)
            logger.warning(
                "Different embedding dimensions detected across routes: %s. Using the first value; embeddings of "
                "different widths cannot be compared with each other.",
                dimensions,
            )
        return dimensions[0] if dimensions else None

    @property
    def tokenizer(self) -> Any:
        """The first route's tokenizer, or None; it cannot be set on the Router."""
        return next((t for r in self._routes().values() if (t := getattr(r[0], "tokenizer", None)) is not None), None)

    @tokenizer.setter
    def tokenizer(self, value: Any) -> None:
        if value is not None:
            raise AttributeError("A Router has one tokenizer per route; set it on the route's input module.")

    @property
    def max_seq_length(self) -> int | None:
        """The longest token limit among the routes; setting it sets every route's."""
        lengths = {length for route in self._routes().values() if (length := getattr(route[0], "max_seq_length", None))}
        if len(lengths) > 1 and frozenset(lengths) not in self._warned_lengths:
            self._warned_lengths.add(frozenset(lengths))
            logger.warning("Different max_seq_lengths detected: %s. Using the maximum value.", sorted(lengths))
        return max(lengths) if lengths else None

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        inputs: list[Any] = [route[0] for route in self._routes().values() if hasattr(route[0], "max_seq_length")]
        if not inputs:
            logger.warning("No modules have a max_seq_length attribute to set; max_seq_length=%s is ignored.", value)
        for first in inputs:
            try:
                first.max_seq_length = value
            except AttributeError:  # a read-only max_seq_length (StaticEmbedding)
                pass

    def on_model_ready(self, model: Any) -> None:
        """Pass the model-ready hook on to every routed module."""
        for route in self._routes().values():
            for module in route:
                hook = getattr(module, "on_model_ready", None)
                if callable(hook):
                    hook(model)

    def get_config_dict(self) -> dict[str, Any]:
        """The Router's own settings (its routes are saved as modules of their own)."""
        return {
            "default_route": self.default_route,
            "allow_empty_key": self.allow_empty_key,
            "route_mappings": dict(self.route_mappings),
        }

    def __repr__(self) -> str:
        return nn.Module.__repr__(self)

    def extra_repr(self) -> str:
        """The default route and route mappings, for ``print(model)``."""
        parts = [f"default_route={self.default_route!r}"] if self.default_route is not None else []
        if self.route_mappings:
            parts.append(f"route_mappings={self.route_mappings}")
        return ", ".join(parts)

    # ----- persistence ------------------------------------------------------------------------------------
    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Save every routed module into its own subfolder and the routes into ``router_config.json``."""
        legacy_layout = bool(kwargs.get("legacy_layout"))
        types: dict[str, str] = {}
        structure: dict[str, list[str]] = {}
        ids: dict[int, str] = {}
        for name, route in self._routes().items():
            structure[name] = []
            for index, module in enumerate(route):
                if id(module) not in ids:  # a module shared by two routes is saved once
                    ids[id(module)] = f"{name}_{index}_{type(module).__name__}"
                    types[ids[id(module)]] = save_module(
                        module,
                        Path(output_path),
                        ids[id(module)],
                        safe_serialization=safe_serialization,
                        legacy_layout=legacy_layout,
                    )
                structure[name].append(ids[id(module)])
        parameters = self.get_config_dict()
        parameters["route_mappings"] = {str(key): value for key, value in self.route_mappings.items()}
        config = {"types": types, "structure": structure, "parameters": parameters}
        write_json(Path(output_path) / self.config_file_name, config, indent=4)

    @classmethod
    def load(cls, model_name_or_path: str | os.PathLike[str], subfolder: str = "", **kwargs: Any) -> Router:
        """Load ``router_config.json`` (or a legacy Asym ``config.json``) and every routed module.

        The routed modules load with the options the model loads with (``load_options``, or the plain keywords).
        """
        options = LoadOptions.from_load_kwargs(kwargs)
        folder = module_dir(model_name_or_path, subfolder)
        config_name = cls.config_file_name if (folder / cls.config_file_name).is_file() else "config.json"
        config = cls.load_config(folder, config_filename=config_name)
        file = folder / config_name
        types, structure = config.get("types"), config.get("structure")
        if not isinstance(types, dict) or not isinstance(structure, dict) or not structure:
            raise ModelFormatError(f"{file} needs 'types' and 'structure' objects naming the routed modules.")
        modules: dict[str, nn.Module] = {}
        for module_id, type_name in types.items():
            modules[module_id] = load_module(
                folder, module_id, type_name, where=f"{file} type {module_id!r}", options=options
            )
        routes: dict[str, list[nn.Module]] = {}
        for route, module_ids in structure.items():
            missing = [m for m in module_ids if m not in modules]
            if missing:
                raise ModelFormatError(f"{file} route {route!r} uses modules {missing} that 'types' does not list.")
            routes[route] = [modules[m] for m in module_ids]
        parameters = dict(config.get("parameters") or {})
        parameters["route_mappings"] = _parse_route_mappings(parameters.get("route_mappings") or {}, file)
        unknown = set(parameters) - set(cls.config_keys)
        if unknown:
            raise ModelFormatError(
                f"{file} 'parameters' has unknown keys {sorted(unknown)}; expected {cls.config_keys}."
            )
        return cls(routes, **parameters)


def _parse_route_mappings(raw: dict[str, str], file: Path) -> dict[RouteKey, str]:
    """Keys are written as Python tuple literals, e.g. "('query', None)"; parsed as literals, never evaluated."""
    parsed: dict[RouteKey, str] = {}
    for key, route in raw.items():
        try:
            value = ast.literal_eval(key)
        except (ValueError, SyntaxError):
            value = None
        if not (isinstance(value, tuple) and len(value) == 2):
            raise ModelFormatError(f"{file} route_mappings key {key!r} is not a (task, modality) pair.")
        parsed[value] = route
    return parsed


Asym = Router  # the name older sentence-transformers releases used
__all__ = ["Router", "Asym"]
