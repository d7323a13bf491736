"""Stream declarations from the command line.

    python -m shared.streams schema          # the JSON Schema of the declaration format
    python -m shared.streams check FILE...   # check declaration files (YAML or JSON), as POST /v1/streams would
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from shared.streams import DeclarationInvalid, load_declaration
from shared.streams.declaration import declaration_json_schema


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["schema"]:
        print(json.dumps(declaration_json_schema(), indent=2, sort_keys=True))
        return 0
    if args[:1] == ["check"] and len(args) > 1:
        failed = 0
        for name in args[1:]:
            try:
                spec = load_declaration(Path(name))
            except (DeclarationInvalid, OSError) as error:
                failed += 1
                problems = getattr(error, "problems", [])
                print(f"{name}: invalid", file=sys.stderr)
                for problem in problems or [error]:
                    print(f"  {getattr(problem, 'path', '') or 'file'}: {getattr(problem, 'reason', problem)}",
                          file=sys.stderr)
                continue
            print(f"{name}: stream {spec.name!r}, {len(spec.fields)} fields, {len(spec.tasks)} tasks")
        return 1 if failed else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
