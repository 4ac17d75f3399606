"""Regenerate configs/default.yaml from the Config dataclass (its defaults and help texts).

    python scripts/write_default_config.py > configs/default.yaml
"""

from dataclasses import fields

import yaml

from w2v.config import Config

print("# w2v default configuration: every option, its default and what it does.")
print("# Precedence: these defaults < a --config file < command-line flags.")
for f in fields(Config):
    value = yaml.safe_dump({f.name: f.default}, default_flow_style=True).strip()[1:-1]
    choices = f.metadata["choices"]
    extra = f" ({' | '.join(choices)})" if choices else ""
    print(f"{value}  # {f.metadata['help']}{extra}")
