"""Auxiliary models an attack needs besides the target (a T5 mask filler for SPV-MIA, BERT for
neighbour generation), loaded as the rest of membench loads models: a local directory, else
the Hub (the local cache first; ``HF_HUB_OFFLINE=1`` is honoured). A model that cannot be
loaded is an error naming what to download and which explicit substitute the scorer takes:
never a silent fallback.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import MembenchError


def unavailable(role: str, name: str, scorer: str, substitute: str, why: str = "") -> MembenchError:
    """The one-line error for an auxiliary model that cannot be loaded."""
    local = Path(name).expanduser()
    if local.is_dir() or name.startswith((".", "/", "~")):
        where = f"{role} {name} cannot be loaded from that folder" + (f" ({why})" if why else "")
        fix = f"point it at a folder written by save_pretrained, or pass --scorer {scorer}:{substitute}"
    else:
        where = (f"{role} {name} is not in the local Hugging Face cache and the Hub cannot be reached"
                 + (f" ({why})" if why else ""))
        fix = (f"run `huggingface-cli download {name}` (with network), point the parameter at a local copy, "
               f"or pass --scorer {scorer}:{substitute}")
    return MembenchError(where, fix)


def load(auto_model, name: str, *, role: str, scorer: str, substitute: str, device: str = "cpu",
         tokenizer_kwargs: dict | None = None):
    """(tokenizer, model in eval mode on ``device``) for ``name`` (a Hub id or a local folder).

    Tries the local cache first (no network round trip), then the Hub; any failure is
    ``unavailable(...)``."""
    from transformers import AutoTokenizer

    kwargs = dict(tokenizer_kwargs or {})
    errors = []
    for local_only in (True, False):
        try:
            tok = AutoTokenizer.from_pretrained(name, local_files_only=local_only, **kwargs)
            model = auto_model.from_pretrained(name, local_files_only=local_only)
            return tok, model.to(device).eval()
        except Exception as exc:  # noqa: BLE001 - translated into one line below
            errors.append(exc)
            if Path(name).expanduser().is_dir():
                break
    exc = errors[-1]
    why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
    raise unavailable(role, name, scorer, substitute, why)
