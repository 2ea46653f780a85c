"""DC-PDD's token-frequency tables: counts of every token id of a tokenizer over a large,
declared reference corpus (the authors count 15 files of C4 with ``src/com_fre_dis.py``; MIMIR
does the same in ``mimir/attacks/dc_pdd.py``), one table per tokenizer.

A table is built once by ``membench dcpdd-freq build --tokenizer TARGET --corpus FILE|DIR`` and
kept under MEMBENCH_HOME (``home.dcpdd_table``), named by the tokenizer's hash, beside a JSON
file saying what it was counted from. Each text is tokenized with the tokenizer's own special
tokens and cut to its first ``max_tokens`` (1,024, the reference's ``max_tok``) ids; every id
counts once per occurrence.

**Size rule.** A frequency table means something only when the corpus is large against the
vocabulary: a build is refused when the corpus has fewer than ``MIN_TOKENS_PER_ENTRY`` (100)
tokens per vocabulary entry (5 million tokens for a 50,000-entry vocabulary; the authors' C4
files hold billions), unless forced; a forced table says so in its metadata and in every
record that uses it.

Corpus files: ``.txt`` (one text per blank-line-separated paragraph), ``.jsonl`` / ``.jsonl.gz``
/ ``.json.gz`` (one JSON object per line with a ``text`` field: C4's own files), ``.parquet``
or ``.csv`` (a ``text`` column); a folder means every such file in it, in name order.
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import numpy as np

from ..errors import MembenchError
from ..hashing import sha256_file
from ..home import dcpdd_table

MIN_TOKENS_PER_ENTRY = 100
MAX_TOKENS = 1024
SUFFIXES = (".txt", ".jsonl", ".jsonl.gz", ".json.gz", ".parquet", ".csv")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return next((s for s in sorted(SUFFIXES, key=len, reverse=True) if name.endswith(s)), "")


def corpus_files(corpus: str | Path) -> list[Path]:
    """The files a declared corpus names (a file, or every known file of a folder)."""
    path = Path(corpus).expanduser()
    if not path.exists():
        raise MembenchError(f"corpus {path} does not exist", "pass an existing file or folder to --corpus")
    files = sorted(p for p in path.rglob("*") if p.is_file() and _suffix(p)) if path.is_dir() else [path]
    bad = [p for p in files if not _suffix(p)]
    if bad or not files:
        raise MembenchError(f"corpus {path} holds no readable text file" if not files else
                            f"corpus file {bad[0]} has an unknown format",
                            f"use {', '.join(SUFFIXES)} files (a `text` field or column)")
    return files


def read_texts(path: Path):
    """The texts of one corpus file, streamed."""
    kind = _suffix(path)
    if kind == ".txt":
        yield from (t.strip() for t in path.read_text(errors="replace").split("\n\n") if t.strip())
        return
    if kind in (".jsonl", ".jsonl.gz", ".json.gz"):
        opener = gzip.open if kind.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    raise MembenchError(f"corpus file {path}: line {n} is not JSON", "one JSON object per line") from None
                text = row.get("text") if isinstance(row, dict) else row if isinstance(row, str) else None
                if text is None:
                    raise MembenchError(f"corpus file {path}: line {n} has no `text` field", "name the field `text`")
                if str(text).strip():
                    yield str(text)
        return
    import pandas as pd

    table = pd.read_parquet(path) if kind == ".parquet" else pd.read_csv(path)
    if "text" not in table.columns:
        raise MembenchError(f"corpus file {path} has no `text` column", "name the text column `text`")
    yield from (str(t) for t in table["text"].dropna() if str(t).strip())


def count_tokens(tokenizer, texts, vocab_size: int, max_tokens: int = MAX_TOKENS, batch: int = 256,
                 progress: bool = False) -> tuple[np.ndarray, int]:
    """(counts per token id, number of texts) of ``texts`` under ``tokenizer``."""
    from tqdm.auto import tqdm

    counts = np.zeros(vocab_size, np.int64)
    n_texts = 0
    chunk: list[str] = []
    bar = tqdm(desc="counting tokens", unit="text", disable=not progress)

    def flush():
        for ids in tokenizer(chunk, add_special_tokens=True)["input_ids"]:
            ids = np.asarray(ids[:max_tokens], np.int64)
            if len(ids) and ids.max() >= vocab_size:
                raise MembenchError(f"token id {int(ids.max())} is outside the vocabulary of {vocab_size}",
                                    "count with the target's own tokenizer")
            np.add.at(counts, ids, 1)
        bar.update(len(chunk))
        chunk.clear()

    for text in texts:
        chunk.append(text)
        n_texts += 1
        if len(chunk) == batch:
            flush()
    if chunk:
        flush()
    bar.close()
    return counts, n_texts


def table_size(target) -> int:
    """Entries of a table for ``target``: its model's vocabulary (the embedding rows), or its
    tokenizer's length when that is larger."""
    return max(int(getattr(target, "vocab_size", 0) or 0), len(target.tokenizer))


def size_rule(n_tokens: int, vocab_size: int) -> dict:
    """The corpus-size rule's verdict for ``n_tokens`` counted over ``vocab_size`` entries."""
    need = MIN_TOKENS_PER_ENTRY * vocab_size
    return {"rule": f"at least {MIN_TOKENS_PER_ENTRY} corpus tokens per vocabulary entry",
            "tokens_per_entry": round(n_tokens / max(vocab_size, 1), 3), "needed_tokens": need,
            "met": n_tokens >= need}


def build(target, corpus: str | Path, *, force: bool = False, max_tokens: int = MAX_TOKENS,
          progress: bool = False) -> dict:
    """Count ``corpus`` with ``target``'s tokenizer and keep the table; returns its metadata.
    Refused when the corpus is too small for the vocabulary (``size_rule``) unless ``force``."""
    started = time.perf_counter()
    files = corpus_files(corpus)
    vocab = table_size(target)
    counts = np.zeros(vocab, np.int64)
    n_texts = 0
    for path in files:
        c, n = count_tokens(target.tokenizer, read_texts(path), vocab, max_tokens, progress=progress)
        counts += c
        n_texts += n
    n_tokens = int(counts.sum())
    verdict = size_rule(n_tokens, vocab)
    if not verdict["met"] and not force:
        raise MembenchError(
            f"corpus {corpus} has {n_tokens:,} tokens for a vocabulary of {vocab:,} entries: "
            f"{verdict['tokens_per_entry']} per entry, below the rule ({verdict['rule']}: {verdict['needed_tokens']:,})",
            "give a larger corpus (e.g. C4's train files, as the authors use), or pass --force to keep it "
            "anyway (the table and every record using it say it was forced)")
    meta = {
        "tokenizer_sha256": str(target.tokenizer_hash), "tokenizer_of": target.id, "vocab_size": vocab,
        "corpus": {"name": Path(corpus).name, "files": [{"name": p.name, "sha256": sha256_file(p)} for p in files],
                   "n_texts": n_texts, "n_tokens": n_tokens, "max_tokens_per_text": max_tokens},
        "size_rule": verdict, "forced": bool(force and not verdict["met"]),
        "built_seconds": round(time.perf_counter() - started, 3),
    }
    counts_path, meta_path = dcpdd_table(str(target.tokenizer_hash))
    tmp = counts_path.with_suffix(".tmp.npy")
    np.save(tmp, counts)
    tmp.replace(counts_path)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return {**meta, "path": str(counts_path)}


def load(tokenizer_hash: str, vocab_size: int, *, who: str, target_id: str) -> tuple[np.ndarray, dict]:
    """(counts, metadata) of the table built for ``tokenizer_hash``; refused when there is none."""
    counts_path, meta_path = dcpdd_table(str(tokenizer_hash))
    if not counts_path.exists() or not meta_path.exists():
        raise MembenchError(
            f"scorer {who}: no DC-PDD frequency table for the tokenizer of {target_id}",
            f"build one from a large corpus: `membench dcpdd-freq build --tokenizer {target_id} --corpus FILE|DIR`, "
            f"or pass --scorer {who}:frequency=pool to count the run's declared pool instead")
    counts = np.load(counts_path)
    meta = json.loads(meta_path.read_text())
    if counts.shape != (vocab_size,):
        raise MembenchError(f"the DC-PDD table for the tokenizer of {target_id} has {counts.shape[0]} entries, "
                            f"the target's vocabulary {vocab_size}",
                            f"rebuild it: `membench dcpdd-freq build --tokenizer {target_id} --corpus FILE|DIR`")
    return counts, meta
