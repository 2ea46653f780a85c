"""`membench dcpdd-freq build|show`: DC-PDD's token-frequency table for a target's tokenizer,
counted from a large declared corpus (``benchmark.attacks.frequency``)."""

from __future__ import annotations

from ..errors import MembenchError
from . import emit


def register(sub):
    p = sub.add_parser("dcpdd-freq", help="DC-PDD's token-frequency table for a tokenizer: build, show")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = actions.add_parser("build", help="count a declared corpus with a target's tokenizer and keep the table")
    b.add_argument("--tokenizer", required=True, metavar="TARGET",
                   help="the target whose tokenizer counts (a registry id or a local model directory)")
    b.add_argument("--corpus", required=True, metavar="FILE|DIR",
                   help="a .txt/.jsonl/.jsonl.gz/.json.gz/.parquet/.csv file (a `text` field) or a folder of them")
    b.add_argument("--max-tokens", type=int, default=1024, help="tokens counted per text (the reference's max_tok)")
    b.add_argument("--force", action="store_true",
                   help="keep a table whose corpus has fewer than 100 tokens per vocabulary entry (it says so)")
    b.add_argument("--json", action="store_true")
    s = actions.add_parser("show", help="what the table of a target's tokenizer was counted from")
    s.add_argument("--tokenizer", required=True, metavar="TARGET")
    s.add_argument("--json", action="store_true")
    p.set_defaults(func=handle)


def handle(args) -> int:
    from .. import targets
    from ..attacks import frequency

    target = targets.load_target(args.tokenizer)
    if args.action == "build":
        if args.max_tokens < 1:
            raise MembenchError(f"--max-tokens must be at least 1, got {args.max_tokens}", "pass e.g. --max-tokens 1024")
        meta = frequency.build(target, args.corpus, force=args.force, max_tokens=args.max_tokens,
                               progress=not args.json)
        corpus = meta["corpus"]
        emit(args, meta, f"DC-PDD table for the tokenizer of {target.id}: {corpus['n_tokens']:,} tokens of "
                         f"{corpus['n_texts']:,} texts over {meta['vocab_size']:,} entries "
                         f"({meta['size_rule']['tokens_per_entry']} per entry"
                         + ("; forced below the size rule" if meta["forced"] else "") + f")\n{meta['path']}")
        return 0
    counts, meta = frequency.load(target.tokenizer_hash, frequency.table_size(target), who="dc_pdd",
                                  target_id=target.id)
    emit(args, meta, f"DC-PDD table for the tokenizer of {target.id} (counted with {meta['tokenizer_of']}): "
                     f"{meta['corpus']['n_tokens']:,} tokens of {meta['corpus']['n_texts']:,} texts from "
                     f"{meta['corpus']['name']} ({len(meta['corpus']['files'])} files); "
                     f"{meta['size_rule']['tokens_per_entry']} per entry" + ("; forced" if meta["forced"] else ""))
    return 0
