"""Propose a stream declaration from a table a user uploads.

:func:`infer_declaration` reads a header and rows of text cells (what a CSV
or a converted XLSX sheet gives) and proposes a declaration (format version
1) with one task learning the column the user names as target. It is a
proposal: :class:`Inference` also lists the columns left out and notes for
the user to review before registering it. The rules, in order:

Rows
  At most ``max_rows`` data rows are read (a note says so when the table has
  more). Blank lines are skipped, as an upload skips them; so are rows whose
  every cell is empty and rows with more cells than the header (an upload
  rejects them), which a note counts. A short row's missing cells are empty.
  A cell is stripped of surrounding blanks; an empty cell is a missing value.

Names
  A header cell, stripped, that is an identifier (a letter or '_', then
  letters, digits or '_', at most 63 characters) is the field name as it is.
  Any other is normalised: accents dropped, lower case, every run of other
  characters replaced by '_', leading and trailing '_' removed, ``col_``
  prefixed to a leading digit, cut to 63 characters (``Sale Price`` ->
  ``sale_price``, ``2nd floor`` -> ``col_2nd_floor``). Uploads match header
  cells to fields by name ignoring case, so a note says which header became
  which field: a file uploaded later must use the field name. Two columns
  whose field names are equal ignoring case are an error naming both. A
  column with an empty header cell is left out.

Types, from a column's non-missing values
  - all integers (``-12``, ``007``) -> ``int``;
  - all finite numbers (``1.5``, ``1e3``) -> ``float``;
  - all of true/false/yes/no, any case -> ``bool`` (``0``/``1`` stay numbers);
  - all ISO 8601 timestamps that shared.validation accepts -> ``datetime``;
  - otherwise text, see below. A column with no value at all is left out.
  A column with any missing value has ``required: false``; the target always
  has, since labels may arrive later.

Numeric bounds (the exact rule; ``numeric_bounds``)
  With ``low``/``high`` the observed extremes, ``margin = max(high - low,
  |low|, |high|) / 2`` (1 when every value is 0). The bounds are ``low -
  margin`` and ``high + margin``, rounded outward to a multiple of the
  largest power of ten not above the margin (to whole numbers for ``int``).
  Then: if every value is >= 0 the minimum is at least 0; if the column
  looks like a percentage (its header has ``%`` or a word percent,
  percentage, pct or share) and every value is within [0, 100], the bounds
  stay within [0, 100] and the unit is ``%``. An integer key has no bounds.

Text columns (the target aside: it is always kept)
  - a *category* when it has at most 50 distinct values and at most one per
    two non-missing rows: ``categories`` are the values by falling frequency,
    then by name (leaving out any with a control character, which uploads
    refuse), and ``open: true`` (a new value later is accepted; models
    encode it as 'other');
  - else, when every value differs, an *identifier*. It is the stream's
    ``key`` if it has no missing value and looks like an id: its field name
    is ``id`` or ends in ``_id`` (any case), or in ``Id``/``ID`` after a
    lower-case letter or digit (``userId``); or each value has at most 40
    characters, no blanks, and the values are not numbers written with a
    decimal comma. An integer column whose values all differ and whose name
    looks like an id is an identifier too (never a feature). At most one key:
    id-named columns first, then the leftmost; other identifiers are left out;
  - else left out as *free text* (values average more than 40 characters, or
    one is over 10,000) or as having too many distinct values for a category.
  Distinct values are counted only while they can still matter, so memory
  stays bounded by the identifier-like columns.

Datetimes
  Kept as fields and listed in ``context`` with the key. The first one (the
  target aside) gets ``time_parts`` hour, day_of_week, month and weekend,
  used as features, unless one of those column names is already a field.

Task
  One task, named like the target field. A bool or text target, or an
  integer one with at most 20 distinct values, is ``classification`` (a note
  lists the classes and their counts; a text target is a category field and,
  when binary, its rarer class is the positive one); any other numeric
  target is ``regression``. Features: every other kept number, bool or
  category column (not the key, not datetimes), then the time parts.
  Errors (:class:`InferenceError`, naming the field at fault): no such target
  column (the message lists the columns), a target with fewer than two
  distinct values ("nothing to learn"), a datetime target, a text target
  with more classes than a category holds, no feature left, more than
  ``MAX_FIELDS`` columns kept, or a stream name that is no stream name.

:func:`infer_from_csv` reads a CSV file exactly as an upload does
(shared.csvtext: UTF-8, header row, delimiter , ; tab or |
chosen from the header line) and refuses a non-UTF-8 or malformed file with
the same reasons, as an :class:`InferenceError` on ``file``.
"""

from __future__ import annotations

import csv
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.csvtext import choose_delimiter, open_csv
from shared.streams.declaration import FORMAT_VERSION, IDENTIFIER, MAX_CATEGORIES, MAX_FIELDS, STREAM_NAME, TimePart

MAX_CATEGORY_VALUES = 50  # distinct values a text column may have to become a category
MAX_NUMERIC_CLASSES = 20  # distinct values an integer target may have to be classified
FREE_TEXT_LENGTH = 40  # mean characters above which text is free text
SHORT_ID_LENGTH = 40  # longest value of an identifier recognised by its shape alone
DEFAULT_MAX_LENGTH = 128  # FieldSpec.max_length's default
MAX_TEXT_LENGTH = 10_000  # FieldSpec.max_length's ceiling
TIME_PARTS = (TimePart.HOUR, TimePart.DAY_OF_WEEK, TimePart.MONTH, TimePart.WEEKEND)
_BATCH_ROWS = 4096  # rows read before their cells are checked, column by column
_SHOWN = 20  # names or classes listed in one message before "... and N more"

_ID_NAME = re.compile(r"(?i:id|.*_id)|.*[a-z0-9](?:Id|ID)")  # id, order_id, ORDER_ID, userId; not paid, VALID
_INTEGER = re.compile(r"[+-]?\d+")
_COMMA_DECIMAL = re.compile(r"[+-]?\d+(,\d+)?")
_BLANK = re.compile(r"\s")
_BOOLEANS = {"true": True, "false": False, "yes": True, "no": False}
_PERCENT_WORDS = {"percent", "percentage", "pct", "share"}
# What shared.validation refuses in text (PostgreSQL cannot hold NUL, and so on).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Ignored:
    column: str
    reason: str


@dataclass(frozen=True)
class Inference:
    declaration: dict[str, Any]  # plain data parse_declaration() accepts
    ignored: list[Ignored]
    notes: list[str]


class InferenceError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


# -- names ---------------------------------------------------------------------

def field_name(header: str, position: int) -> str:
    """The field name of a header cell (``position`` counts from 1, for a
    header with nothing usable left)."""
    text = header.strip()
    if re.fullmatch(IDENTIFIER, text):
        return text
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^a-z0-9]+", "_", plain.lower()).strip("_")
    if not name:
        return f"col_{position}"
    if name[0].isdigit():
        name = f"col_{name}"
    return name[:63].rstrip("_")


def _looks_like_id(name: str) -> bool:
    return _ID_NAME.fullmatch(name) is not None


def _looks_like_percent(header: str, name: str) -> bool:
    return "%" in header or bool(_PERCENT_WORDS & set(name.lower().split("_")))


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f", ... and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


# -- numbers -------------------------------------------------------------------

def numeric_bounds(low: float, high: float, *, integer: bool, percent: bool) -> tuple[float | None, float | None]:
    """Bounds around the observed range [low, high] (the rule in the module
    docstring); None where they would not be finite."""
    margin = 0.5 * max(high - low, abs(low), abs(high)) or 1.0
    minimum = _outward(low - margin, margin, down=True)
    maximum = _outward(high + margin, margin, down=False)
    if integer:
        minimum = float(math.floor(minimum)) if math.isfinite(minimum) else minimum
        maximum = float(math.ceil(maximum)) if math.isfinite(maximum) else maximum
    if low >= 0:
        minimum = max(minimum, 0.0)
    if percent and low >= 0 and high <= 100:
        maximum = min(maximum, 100.0)
    # Beyond the float range (values near ±1.8e308) a bound is left out rather than infinite.
    return (minimum if math.isfinite(minimum) else None, maximum if math.isfinite(maximum) else None)


def _outward(value: float, margin: float, *, down: bool) -> float:
    """``value`` moved away from the data (down or up) to a multiple of the
    power of ten at or below ``margin``; unchanged where floats cannot."""
    if not (math.isfinite(value) and math.isfinite(margin)):
        return value
    step = 10.0 ** math.floor(math.log10(margin))
    if step == 0 or not math.isfinite(value / step):
        return value
    steps = math.floor(value / step) if down else math.ceil(value / step)
    rounded = float(f"{steps * step:.12g}")  # 0.30000000000000004 -> 0.3
    outward = rounded <= value if down else rounded >= value
    return rounded if math.isfinite(rounded) and outward else value


def _plain_number(value: float) -> int | float:
    """200 rather than 200.0 in the YAML a user reads."""
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


# -- one column, read a batch of cells at a time --------------------------------

@dataclass
class _Column:
    """What the rules need to know about a column, gathered in one pass with
    bounded memory: distinct values are only counted while they can still
    matter (a category, an identifier, the target's classes)."""

    position: int  # from 1
    header: str
    name: str
    is_target: bool
    present: int = 0
    missing: int = 0
    ints: bool = True
    numbers: bool = True
    bools: bool = True
    datetimes: bool = True
    comma_decimals: bool = True
    low: float = math.inf
    high: float = -math.inf
    total_length: int = 0
    longest: int = 0
    blanks_inside: bool = False
    control: int = 0  # values shared.validation refuses as text
    repeated: bool = False
    counts: Counter[str] | None = field(default_factory=Counter)

    def add(self, texts: list[str]) -> None:
        """Take a batch of the column's stripped cells ('' when missing); each
        check runs over the whole batch in C loops (map, all, Counter.update)
        and stops being made once it has failed."""
        present = [text for text in texts if text]
        self.missing += len(texts) - len(present)
        if not present:
            return
        self.present += len(present)
        lengths = list(map(len, present))
        self.total_length += sum(lengths)
        self.longest = max(self.longest, max(lengths))
        if not self.blanks_inside:
            self.blanks_inside = any(map(_BLANK.search, present))
        self.control += sum(1 for _ in filter(_CONTROL.search, present))
        self._classify(present)
        self._count(present)

    def _classify(self, present: list[str]) -> None:
        if self.numbers:
            try:
                numbers = list(map(float, present))
            except ValueError:
                numbers = [math.nan]
            low, high = min(numbers), max(numbers)
            if any(map(math.isnan, numbers)) or not (math.isfinite(low) and math.isfinite(high)):
                self.numbers = self.ints = False
            else:
                self.low, self.high = min(self.low, low), max(self.high, high)
                self.ints = self.ints and all(map(_INTEGER.fullmatch, present))
        if self.bools:
            self.bools = set(map(str.lower, present)) <= _BOOLEANS.keys()
        if self.comma_decimals:
            self.comma_decimals = all(map(_COMMA_DECIMAL.fullmatch, present))
        if self.datetimes:
            try:  # exactly what shared.validation accepts
                for text in present:
                    datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                self.datetimes = False

    def _count(self, present: list[str]) -> None:
        if self.counts is None:
            return
        before = len(self.counts)
        self.counts.update(present)
        if len(self.counts) < before + len(present):
            self.repeated = True
        limit = MAX_CATEGORIES if self.is_target else MAX_CATEGORY_VALUES
        # Past the limit the exact values matter only to find an identifier
        # (all distinct; text, or integers named like an id).
        could_be_id = not self.repeated and (not self.numbers or (self.ints and _looks_like_id(self.name)))
        if len(self.counts) > limit and not could_be_id:
            self.counts = None

    # -- what the pass found ----------------------------------------------------

    @property
    def kind(self) -> str:
        if self.ints:
            return "int"
        if self.numbers:
            return "float"
        if self.bools:
            return "bool"
        if self.datetimes:
            return "datetime"
        return "text"

    @property
    def all_distinct(self) -> bool:
        return self.counts is not None and not self.repeated

    @property
    def distinct(self) -> int | None:
        return None if self.counts is None else len(self.counts)

    @property
    def constant(self) -> bool:
        if self.kind in ("int", "float"):
            return self.low == self.high
        return self.distinct == 1

    def key_candidate(self) -> bool:
        if self.is_target or self.missing or not self.all_distinct or self.longest > MAX_TEXT_LENGTH:
            return False
        if self.kind == "int":
            return _looks_like_id(self.name)
        if self.kind != "text":
            return False
        short = self.longest <= SHORT_ID_LENGTH and not self.blanks_inside and not self.comma_decimals
        return _looks_like_id(self.name) or short

    def category_values(self) -> list[str] | None:
        """The values by falling frequency then name, or None when the column is no category."""
        if self.counts is None or self.longest > MAX_TEXT_LENGTH:
            return None
        if not self.is_target and (len(self.counts) > MAX_CATEGORY_VALUES or 2 * len(self.counts) > self.present):
            return None
        ordered = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))
        return [value for value, _ in ordered if not _CONTROL.search(value)]

    def classes(self) -> Counter[str]:
        """The target's class labels as a model sees them, with their counts."""
        assert self.counts is not None
        labels: Counter[str] = Counter()
        for value, count in self.counts.items():
            if self.kind == "bool":
                label = "true" if _BOOLEANS[value.lower()] else "false"
            elif self.kind == "int":
                label = str(int(value))
            elif self.kind == "float":
                label = repr(float(value) + 0.0)  # -0.0 and 0.0 are one value
            else:
                label = value
            labels[label] += count
        return labels


# -- the inference ------------------------------------------------------------------

@dataclass
class _Proposal:
    fields: list[dict[str, Any]] = field(default_factory=list)
    features: list[str] = field(default_factory=list)
    datetimes: list[str] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def infer_declaration(
    header: list[str], rows: Iterable[list[str]], *, name: str, target: str, max_rows: int = 100_000
) -> Inference:
    """Propose a declaration for the table; raises :class:`InferenceError`."""
    if re.fullmatch(STREAM_NAME, name) is None:
        raise InferenceError("name", f"{name[:60]!r} is no stream name: lower-case letters, digits and '_', "
                             "starting with a letter, at most 48 characters")
    columns = _columns(header, target)
    count, notes = _read_rows(columns, len(header), rows, max_rows)
    if not count:
        raise InferenceError("rows", "the table has no data rows")
    target_column = next(column for column in columns if column.is_target)

    proposal = _Proposal(notes=notes)
    key = _choose_key(columns)
    for column in columns:
        if column.is_target:
            _add_target(column, proposal)
        elif column is key:
            _add_key(column, proposal)
        else:
            _add_column(column, key, proposal)
    if len(proposal.fields) > MAX_FIELDS:
        raise InferenceError("columns", f"{len(proposal.fields)} columns would become fields; a stream has at most "
                             f"{MAX_FIELDS} (leave some out of the table)")

    declaration: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "description": f"Proposed from an uploaded table of {count} rows.",
    }
    if key is not None:
        declaration["key"] = key.name
        proposal.notes.append(f"key: field {key.name!r} (every value differs); records with the same key keep their order")
    declaration["fields"] = proposal.fields
    time_parts = _time_parts(proposal)
    if time_parts is not None:
        declaration["time_parts"] = [time_parts]
    context = ([key.name] if key is not None else []) + proposal.datetimes
    if context:
        declaration["context"] = context
    declaration["tasks"] = [_task(target_column, proposal)]
    _note_optional(columns, proposal)
    proposal.notes.append(
        "numeric bounds are the observed range widened by half (see shared/streams/infer.py); "
        "an upload rejects values outside them, so check them"
    )
    return Inference(declaration=declaration, ignored=proposal.ignored, notes=proposal.notes)


def _columns(header: list[str], target: str) -> list[_Column]:
    wanted = target.strip().lower()
    columns: list[_Column] = []
    by_name: dict[str, _Column] = {}
    for position, cell in enumerate(header, start=1):
        text = cell.strip()
        name = field_name(text, position) if text else ""
        column = _Column(position=position, header=text, name=name, is_target=False)
        columns.append(column)
        if not text:
            continue
        other = by_name.get(name.lower())
        if other is not None:
            raise InferenceError("columns", f"columns {other.header!r} (column {other.position}) and {text!r} "
                                 f"(column {position}) both become field {name!r}; rename one")
        by_name[name.lower()] = column
    found = [c for c in columns if c.header and wanted in (c.header.lower(), c.name.lower())]
    if not wanted or not found:
        names = [c.header for c in columns if c.header]
        raise InferenceError("target", f"no column {target[:60]!r} (columns: {_listing(names)})")
    found[0].is_target = True
    return columns


def _read_rows(columns: list[_Column], width: int, rows: Iterable[list[str]], max_rows: int) -> tuple[int, list[str]]:
    """Feed every cell to its column, a batch of rows at a time; the number of
    rows used, and notes."""
    notes: list[str] = []
    read = used = blank = too_wide = 0
    batch: list[list[str]] = []
    for cells in rows:
        if not cells:
            continue  # a blank line, which an upload skips too
        if read >= max_rows:
            notes.append(f"read the first {max_rows} rows only: values in later rows may fall outside "
                         "the proposed bounds and categories")
            break
        read += 1
        if len(cells) > width:
            too_wide += 1
            continue
        texts = [cell.strip() for cell in cells]
        if not any(texts):
            blank += 1
            continue
        texts.extend([""] * (width - len(texts)))
        batch.append(texts)
        if len(batch) >= _BATCH_ROWS:
            _feed(columns, batch)
            used += len(batch)
            batch = []
    _feed(columns, batch)
    used += len(batch)
    if too_wide:
        notes.append(f"{too_wide} rows have more cells than the header ({width}) and were left out, "
                     "as an upload rejects them")
    if blank:
        notes.append(f"{blank} rows with every cell empty were left out")
    return used, notes


def _feed(columns: list[_Column], batch: list[list[str]]) -> None:
    if batch:
        for column, texts in zip(columns, zip(*batch, strict=True), strict=True):
            column.add(list(texts))


def _choose_key(columns: list[_Column]) -> _Column | None:
    candidates = [column for column in columns if column.header and column.present and column.key_candidate()]
    named = [column for column in candidates if _looks_like_id(column.name)]
    return (named or candidates or [None])[0]


def _rename_note(column: _Column, proposal: _Proposal) -> None:
    if column.name != column.header:
        proposal.notes.append(f"column {column.header!r} is field {column.name!r}: a file uploaded to this "
                              f"stream must name that column {column.name!r}")


def _base_field(column: _Column, type_: str, required: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": column.name, "type": type_}
    if not required:
        spec["required"] = False
    return spec


def _numeric_field(column: _Column, required: bool) -> dict[str, Any]:
    spec = _base_field(column, column.kind, required)
    percent = _looks_like_percent(column.header, column.name)
    minimum, maximum = numeric_bounds(column.low, column.high, integer=column.kind == "int", percent=percent)
    if minimum is not None:
        spec["minimum"] = _plain_number(minimum)
    if maximum is not None:
        spec["maximum"] = _plain_number(maximum)
    if percent and column.low >= 0 and column.high <= 100:
        spec["unit"] = "%"
    return spec


def _category_field(column: _Column, values: list[str], required: bool, proposal: _Proposal) -> dict[str, Any]:
    spec = _base_field(column, "category", required)
    spec["categories"] = values
    spec["open"] = True
    if column.longest > DEFAULT_MAX_LENGTH:
        spec["max_length"] = column.longest
    if column.control:
        proposal.notes.append(f"{column.control} values of {column.name!r} hold control characters; "
                              "an upload rejects those rows, and they are not among the categories")
    return spec


def _add_key(column: _Column, proposal: _Proposal) -> None:
    _rename_note(column, proposal)
    spec = _base_field(column, "int" if column.kind == "int" else "str", required=True)
    if column.kind != "int" and column.longest > DEFAULT_MAX_LENGTH:
        spec["max_length"] = column.longest
    if column.control:
        proposal.notes.append(f"{column.control} values of key {column.name!r} hold control characters; "
                              "an upload rejects those rows")
    proposal.fields.append(spec)


def _add_column(column: _Column, key: _Column | None, proposal: _Proposal) -> None:
    if not column.header:
        proposal.ignored.append(Ignored(f"column {column.position}", "no name in the header"))
        return
    if not column.present:
        proposal.ignored.append(Ignored(column.header, "empty: no values"))
        return
    required = column.missing == 0
    kind = column.kind
    spec: dict[str, Any]
    if kind == "datetime":
        spec = _base_field(column, "datetime", required)
        proposal.datetimes.append(column.name)
    elif kind == "int" and column.all_distinct and _looks_like_id(column.name):
        proposal.ignored.append(Ignored(column.header, _identifier_reason(column, key)))
        return
    elif kind in ("int", "float"):
        spec = _numeric_field(column, required)
        proposal.features.append(column.name)
    elif kind == "bool":
        spec = _base_field(column, "bool", required)
        proposal.features.append(column.name)
    else:
        values = column.category_values()
        if values is None:
            proposal.ignored.append(Ignored(column.header, _text_reason(column, key)))
            _note_comma_decimals(column, proposal)
            return
        spec = _category_field(column, values, required, proposal)
        proposal.features.append(column.name)
        _note_comma_decimals(column, proposal)
    if column.name in proposal.features and column.constant:
        proposal.notes.append(f"feature {column.name!r} has a single value: it tells a model nothing")
    _rename_note(column, proposal)
    proposal.fields.append(spec)


def _note_comma_decimals(column: _Column, proposal: _Proposal) -> None:
    if column.comma_decimals:
        proposal.notes.append(f"column {column.header!r} looks like numbers written with a decimal comma, "
                              "which Fluxo reads as text: write them with a decimal point to learn from them")


def _identifier_reason(column: _Column, key: _Column | None) -> str:
    reason = "identifier: every value differs"
    if key is not None:
        return f"{reason} (the key is {key.name!r})"
    if column.missing:
        return f"{reason}, but {column.missing} rows lack it, so it cannot be the key"
    return reason


def _text_reason(column: _Column, key: _Column | None) -> str:
    mean = column.total_length / column.present
    if mean > FREE_TEXT_LENGTH or column.longest > MAX_TEXT_LENGTH:
        return f"free text: values average {mean:.0f} characters"
    if column.all_distinct:
        return _identifier_reason(column, key)
    counted = f"{column.distinct} distinct values" if column.distinct is not None else \
        f"more than {MAX_CATEGORY_VALUES} distinct values"
    return (f"text with {counted} in {column.present} rows: too many for a category "
            f"(at most {MAX_CATEGORY_VALUES}, and at most one per two rows)")


def _add_target(column: _Column, proposal: _Proposal) -> None:
    if not column.present:
        raise InferenceError("target", f"{column.header!r} has no values: nothing to learn")
    if column.kind == "datetime":
        raise InferenceError("target", f"{column.header!r} holds datetimes; a target is a number, a boolean or text")
    if column.counts is not None and len(column.classes()) == 1:
        (only,) = column.classes()
        raise InferenceError("target", f"{column.header!r} has a single value ({only[:40]!r} in {column.present} "
                             "rows): nothing to learn")
    if column.kind == "text":
        values = column.category_values()
        if values is None and column.longest > MAX_TEXT_LENGTH:
            raise InferenceError("target", f"{column.header!r} has values over {MAX_TEXT_LENGTH} characters: "
                                 "free text, not classes")
        if values is None:
            raise InferenceError("target", f"{column.header!r} has more than {MAX_CATEGORIES} distinct values: "
                                 "too many classes (is it a number written oddly, or free text?)")
        spec = _category_field(column, values, False, proposal)
    elif column.kind in ("int", "float"):
        spec = _numeric_field(column, False)
    else:
        spec = _base_field(column, "bool", False)
    _rename_note(column, proposal)
    proposal.fields.append(spec)


def _time_parts(proposal: _Proposal) -> dict[str, Any] | None:
    if not proposal.datetimes:
        return None
    source = proposal.datetimes[0]
    names = [f"{source}_{part.value}" for part in TIME_PARTS]
    taken = {spec["name"] for spec in proposal.fields}
    clash = [n for n in names if n in taken]
    if clash:
        proposal.notes.append(f"no time parts for {source!r}: {_listing(clash)} is already a field")
        return None
    proposal.features.extend(names)
    proposal.notes.append(f"time parts of {source!r} ({', '.join(p.value for p in TIME_PARTS)}, in UTC) are features")
    if len(proposal.datetimes) > 1:
        proposal.notes.append(f"datetime fields {_listing(proposal.datetimes[1:])} are context only")
    return {"field": source, "parts": [part.value for part in TIME_PARTS]}


def _task(column: _Column, proposal: _Proposal) -> dict[str, Any]:
    if not proposal.features:
        raise InferenceError("features", f"no column besides {column.header!r} can be a model input "
                             "(inputs are numbers, booleans, categories and time parts)")
    classes = column.classes() if column.counts is not None else None
    task: dict[str, Any] = {"name": column.name, "kind": None, "target": column.name}
    few = classes is not None and len(classes) <= MAX_NUMERIC_CLASSES
    if column.kind in ("bool", "text") or (column.kind == "int" and few):
        assert classes is not None
        task["kind"] = "classification"
        ordered = sorted(classes.items(), key=lambda item: (-item[1], item[0]))
        listed = _listing([f"{label} ({count})" for label, count in ordered])
        proposal.notes.append(f"target {column.name!r} has {len(classes)} classes: {listed}")
        if column.kind == "text" and len(classes) == 2:
            task["positive_class"] = ordered[1][0]
            proposal.notes.append(f"positive class of {column.name!r}: {ordered[1][0]!r} (the rarer); "
                                  "change positive_class if the other one is")
    else:
        task["kind"] = "regression"
        if few:
            proposal.notes.append(f"target {column.name!r} has only {len(classes or ())} distinct values but "
                                  "they are not all integers: learned as regression")
    task["features"] = proposal.features
    return task


def _note_optional(columns: list[_Column], proposal: _Proposal) -> None:
    kept = {spec["name"] for spec in proposal.fields}
    optional = [c.name for c in columns if c.missing and c.present and c.name in kept and not c.is_target]
    if optional:
        proposal.notes.append(f"optional (some cells empty): {_listing(optional)}")


# -- files ----------------------------------------------------------------------------

def infer_from_csv(path: Path, *, name: str, target: str, max_rows: int = 100_000) -> Inference:
    """Propose a declaration for a CSV file read as an upload reads it."""
    reader = None
    try:
        with open_csv(path) as handle:
            delimiter = choose_delimiter(handle.readline(64 * 1024))
            handle.seek(0)
            reader = csv.reader(handle, delimiter=delimiter, strict=True)
            header = next(reader, None)
            if header is None or not any(cell.strip() for cell in header):
                raise InferenceError("file", "empty file: expected a header row naming the columns")
            return infer_declaration(header, reader, name=name, target=target, max_rows=max_rows)
    except UnicodeDecodeError as error:
        raise InferenceError("file", f"not UTF-8 text (invalid byte at position {error.start} of a block)") from None
    except csv.Error as error:
        line = reader.line_num if reader is not None else 1
        raise InferenceError("file", f"malformed CSV at line {line}: {error}") from None
