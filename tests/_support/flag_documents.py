"""Flag sets in normal form for the agent/SDK interop tests."""

from __future__ import annotations

from typing import Any


def mixed_flag_set(checkout_weight: int = 25) -> dict[str, Any]:
    """A boolean with a segment and a split, a string by attribute, numbers and an object."""
    return {
        "segments": {"beta": {"ids": ["alice"]}},
        "flags": {
            "new-checkout": {
                "type": "boolean",
                "variants": {"on": True, "off": False},
                "default_variant": "off",
                "rules": [{"when": {"segment": "beta"}, "variant": "on"}],
                "fallthrough": {
                    "split": [
                        {"variant": "on", "weight": checkout_weight},
                        {"variant": "off", "weight": 100 - checkout_weight},
                    ]
                },
            },
            "banner": {
                "type": "string",
                "variants": {"pro": "Welcome back, pro", "free": "Go pro"},
                "default_variant": "free",
                "rules": [
                    {"when": {"attribute": "plan", "op": "eq", "value": "pro"}, "variant": "pro"}
                ],
            },
            "max-items": {
                "type": "number",
                "variants": {"few": 3, "many": 30},
                "default_variant": "few",
            },
            "ratio": {"type": "number", "variants": {"half": 0.5}, "default_variant": "half"},
            "theme": {
                "type": "object",
                "variants": {"dark": {"bg": "#000", "fg": "#fff"}},
                "default_variant": "dark",
            },
        },
    }
