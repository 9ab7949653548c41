from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field

from domain.llm.model import ModelKind, ModelSpec


class VariantResponse(BaseModel):
    label: str
    weight: int
    provider: str
    upstream_model: str


class ModelResponse(BaseModel):
    name: str
    kind: ModelKind = Field(description="`chat` answers completions; `embedding` turns texts into vectors.")
    provider: str
    description: str
    context_window: int
    max_output_tokens: int
    input_usd_per_mtok: Decimal = Field(description="US dollars per million input tokens.")
    output_usd_per_mtok: Decimal = Field(description="US dollars per million output tokens.")
    fallbacks: list[str]
    variants: list[VariantResponse] = Field(description="Weighted A/B deployments; empty when the model has one.")
    dimensions: int | None = Field(None, description="An embedding model's vector size, when the catalog fixes it.")

    @classmethod
    def of(cls, spec: ModelSpec) -> ModelResponse:
        return cls(
            name=spec.name,
            kind=spec.kind,
            provider=spec.provider,
            description=spec.description,
            context_window=spec.context_window,
            max_output_tokens=spec.max_output_tokens,
            input_usd_per_mtok=Decimal(spec.input_price_per_mtok_micros) / 1_000_000,
            output_usd_per_mtok=Decimal(spec.output_price_per_mtok_micros) / 1_000_000,
            fallbacks=list(spec.fallbacks),
            variants=[
                VariantResponse(
                    label=v.variant or "", weight=v.weight, provider=v.provider, upstream_model=v.upstream_model
                )
                for v in spec.variants
            ],
            dimensions=spec.dimensions,
        )


class ModelListResponse(BaseModel):
    items: list[ModelResponse]
    default_model: str
