"""Model names → classes, so pipelines and bundles refer to models by name.

Imports are lazy: asking for ``"popularity"`` does not import torch.
"""

from __future__ import annotations

import importlib

from models.base import CandidateGenerator, Ranker

#: name → "module:Class". Each model issue adds its line here.
_MODEL_PATHS: dict[str, str] = {
    "neural-ranker": "models.ranker:NeuralRanker",
}


def register_model_path(name: str, target: str) -> None:
    """Add a model under ``name`` given as ``"package.module:ClassName"``."""
    _MODEL_PATHS[name] = target


def model_names() -> list[str]:
    """Names accepted by ``model_class``."""
    return sorted(_MODEL_PATHS)


def model_class(name: str) -> type[CandidateGenerator] | type[Ranker]:
    """The class registered under ``name``; a clear error lists the known names."""
    try:
        target = _MODEL_PATHS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(model_names()) or 'none'}") from None
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls  # type: ignore[no-any-return]


# Marquee's candidate generators (models/ issue).
register_model_path("popularity", "models.popularity:PopularityModel")
register_model_path("trending", "models.popularity:TrendingModel")
register_model_path("ease", "models.ease:EASE")
register_model_path("recency_ease", "models.ease:RecencyEASE")
register_model_path("item_knn", "models.item_knn:ItemKNN")
register_model_path("seqknn", "models.sequence:SequenceKNN")
register_model_path("als", "models.als:ImplicitALS")
register_model_path("lightfm", "models.lightfm_hybrid:LightFMHybrid")
register_model_path("sasrec", "models.sasrec:SASRec")
register_model_path("time_popularity", "models.time_popularity:TimePopularity")
register_model_path("blend", "models.blend:Blend")
