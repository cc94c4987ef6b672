"""The Grafana dashboard of issue 25 (deploy/grafana/tirage.json) names only series Tirage's
processes export. Standard library only: the end-to-end test runs it with a bare python3.

    validate_dashboard.py DASHBOARD                       the static checks
    validate_dashboard.py DASHBOARD --metrics FILE...     and the names against /metrics dumps

Static checks: the file is JSON, a dashboard with a Prometheus datasource variable
`datasource`; every panel but a row has that datasource and at least one target with an
`expr`; panel ids are unique; every `expr` (and every query variable's query) parses well
enough to find its series: a small PromQL tokenizer, then a scan that tells metric names from
functions, aggregations, keywords, label names and Grafana variables. Each name must be a
series one of the processes registers (read off the `prometheus` crate calls in
api/src/metrics.rs and worker/src/metrics*.rs: a histogram counts as its `_bucket`, `_sum` and
`_count`), or RabbitMQ's `rabbitmq_detailed_*`, which only panels under a row whose title
names RabbitMQ may read (those need RabbitMQ's own scrape: docs/RUNBOOK.md). Recording rules
(`a:b:c`) are refused: the dashboard reads raw series, with or without the rules loaded.

With `--metrics`, given Prometheus text-format dumps of the processes' /metrics (every API
replica and worker of a cluster that ran a batch: tests/tests/cluster.rs), every name a
non-RabbitMQ query uses must be a sample name in at least one dump, and every label a
selector matches on or a query groups by must be one of its labels there or one Prometheus
adds when it scrapes (SCRAPE_LABELS). A labelled counter has no series before its first
event (a callback, a photo failure, a reconciler repair), so a panel may name such a series
in its description, with the reason, in this form (Markdown, shown in Grafana's tooltip):

    Not in /metrics before its first event: `tirage_worker_callbacks_total` (why a normal
    run has none).

Such a name may be absent from every dump (it is reported, not refused); it must still be
one the panel's queries use and one the sources register.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATASOURCE_VAR = "datasource"
DATASOURCE_REF = "${datasource}"
# Rust files whose `prometheus` registrations are the series the processes export.
SOURCE_GLOBS = ("api/src/metrics.rs", "worker/src/metrics.rs", "worker/src/metrics/**/*.rs")
TIRAGE_PREFIXES = ("tirage_api_", "tirage_worker_")
RABBITMQ_PREFIX = "rabbitmq_detailed_"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Labels a series gets from Prometheus's scrape, not from the process: `job` and `instance`
# always, the others from Kubernetes service discovery (the Prometheus Operator's
# ServiceMonitor/PodMonitor), which the alert rules aggregate by.
SCRAPE_LABELS = frozenset({"job", "instance", "namespace", "pod", "service", "container",
                           "endpoint"})

# --- PromQL ------------------------------------------------------------------------------------

AGGREGATIONS = frozenset({
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
})
FUNCTIONS = frozenset({
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
    "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
    "count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
    "delta", "deriv", "double_exponential_smoothing", "end", "exp", "floor", "histogram_avg",
    "histogram_count", "histogram_fraction", "histogram_quantile", "histogram_stddev",
    "histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta", "increase", "info",
    "irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2",
    "mad_over_time", "max_over_time", "min_over_time", "minute", "month", "pi",
    "predict_linear", "present_over_time", "quantile_over_time", "rad", "rate", "resets",
    "round", "scalar", "sgn", "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc",
    "sort_desc", "sqrt", "start", "stddev_over_time", "stdvar_over_time", "sum_over_time",
    "tan", "tanh", "time", "timestamp", "vector", "year",
})
# Functions whose first string argument names a label they write.
LABEL_WRITERS = frozenset({"label_replace", "label_join", "count_values"})
BINARY_KEYWORDS = frozenset({"and", "or", "unless", "atan2"})
GROUPING_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
NUMBER_WORDS = frozenset({"inf", "nan"})
MATCH_OPS = ("=~", "!~", "!=", "=")

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<range>\[(?:\[\[[^\[\]]*\]\]|[^\[\]])*\])
  | (?P<var>\$\{[^}]*\}|\$[A-Za-z_]\w*|\[\[[^\[\]]*\]\])
  | (?P<number>0[xX][0-9a-fA-F]+
      |(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)
  | (?P<op>==|!=|=~|!~|<=|>=|[-+*/%^<>=@])
  | (?P<punct>[(){},])
""", re.VERBOSE)


class PromQLError(ValueError):
    pass


@dataclass(frozen=True)
class Token:
    kind: str  # space and comment never leave tokenize()
    text: str
    pos: int


def tokenize(expr: str) -> list[Token]:
    """PromQL's tokens, Grafana's variables (`$x`, `${x}`, `[[x]]`) as `var` and a range or
    subquery (`[5m]`, `[$__rate_interval]`, `[1h:5m]`) as one `range` token."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise PromQLError(f"unexpected {expr[pos]!r} at {pos}")
        kind = m.lastgroup
        if kind not in ("space", "comment"):
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    return tokens


def unquote(token: Token) -> str:
    text = token.text
    if text[0] == "`":
        return text[1:-1]
    return re.sub(r"\\(.)", r"\1", text[1:-1])


@dataclass
class Selector:
    name: str
    labels: set[str] = field(default_factory=set)  # labels its matchers name


@dataclass
class Query:
    selectors: list[Selector] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)  # by, without, on, ignoring, group_x
    written: set[str] = field(default_factory=set)  # labels label_replace & co. write

    @property
    def names(self) -> set[str]:
        return {s.name for s in self.selectors}


def parse(expr: str) -> Query:
    """The series selectors of a PromQL expression, with the labels it matches and groups on.
    Not a full parser: enough structure to tell a metric name from everything else, and to
    refuse unbalanced brackets, unknown functions and selectors without a name."""
    tokens = tokenize(expr)
    q = Query()
    stack: list[tuple[str, str | None, bool]] = []  # (bracket, function, its label written)
    i = 0

    def at(k: int) -> Token | None:
        return tokens[k] if k < len(tokens) else None

    def is_punct(tok: Token | None, text: str) -> bool:
        return tok is not None and tok.kind == "punct" and tok.text == text

    def where(tok: Token | None) -> str:
        return f"at {tok.pos}" if tok else "at the end"

    def matchers(k: int) -> tuple[int, str | None, set[str]]:
        """Parse `{...}` starting at tokens[k] == '{': (index after '}', name, labels)."""
        name, labels = None, set()
        k += 1
        while True:
            tok = at(k)
            if is_punct(tok, "}"):
                return k + 1, name, labels
            if tok is None or tok.kind not in ("ident", "string"):
                raise PromQLError(f"a label matcher expected {where(tok)}")
            op = at(k + 1)
            if tok.kind == "string" and (is_punct(op, ",") or is_punct(op, "}")):
                name = unquote(tok)  # {"metric_name", ...} (Prometheus 3)
                k += 1
            else:
                label = tok.text if tok.kind == "ident" else unquote(tok)
                if op is None or op.kind != "op" or op.text not in MATCH_OPS:
                    raise PromQLError(f"=, !=, =~ or !~ expected after {label} {where(op)}")
                value = at(k + 2)
                if value is None or value.kind != "string":
                    raise PromQLError(f"a quoted value expected after {label}{op.text} "
                                      f"{where(value)}")
                if label == "__name__" and op.text == "=":
                    name = unquote(value)
                else:
                    labels.add(label)
                k += 3
            if is_punct(at(k), ","):
                k += 1
            elif not is_punct(at(k), "}"):
                raise PromQLError(f"',' or '}}' expected {where(at(k))}")

    while i < len(tokens):
        tok, nxt = tokens[i], at(i + 1)
        if tok.kind == "ident":
            word = tok.text.lower()
            if word in BINARY_KEYWORDS or word == "bool" or word in NUMBER_WORDS:
                i += 1
            elif word in GROUPING_KEYWORDS:
                i += 1
                if is_punct(nxt, "("):
                    i += 1
                    while not is_punct(at(i), ")"):
                        label = at(i)
                        if label is None or label.kind not in ("ident", "string"):
                            raise PromQLError(f"a label name expected in {word}(…) "
                                              f"{where(label)}")
                        q.grouping.add(label.text if label.kind == "ident" else unquote(label))
                        i += 1
                        if is_punct(at(i), ","):
                            i += 1
                    i += 1
                elif word not in ("group_left", "group_right"):
                    raise PromQLError(f"'(' expected after {word} {where(nxt)}")
            elif word == "offset":
                i += 1
                if at(i) is not None and at(i).kind == "op" and at(i).text == "-":
                    i += 1
                if at(i) is None or at(i).kind not in ("number", "var"):
                    raise PromQLError(f"a duration expected after offset {where(at(i))}")
                i += 1
            elif is_punct(nxt, "("):
                if word in AGGREGATIONS:
                    function = word
                elif tok.text in FUNCTIONS:
                    function = tok.text
                else:
                    raise PromQLError(f"unknown function {tok.text}() at {tok.pos}")
                stack.append(("(", function, False))
                i += 2
            elif word in AGGREGATIONS and nxt is not None and nxt.kind == "ident" \
                    and nxt.text.lower() in ("by", "without"):
                i += 1  # sum by (x) (…): the grouping is read next
            else:
                selector = Selector(tok.text)
                i += 1
                if is_punct(nxt, "{"):
                    i, name, selector.labels = matchers(i)
                    if name is not None:
                        raise PromQLError(f"{tok.text} is named twice at {tok.pos}")
                q.selectors.append(selector)
        elif is_punct(tok, "{"):
            i, name, labels = matchers(i)
            if name is None:
                raise PromQLError(f"a selector without a metric name at {tok.pos}")
            q.selectors.append(Selector(name, labels))
        elif is_punct(tok, "("):
            stack.append(("(", None, False))
            i += 1
        elif is_punct(tok, ")"):
            if not stack:
                raise PromQLError(f"unbalanced ')' at {tok.pos}")
            stack.pop()
            i += 1
        elif is_punct(tok, "}"):
            raise PromQLError(f"unbalanced '}}' at {tok.pos}")
        elif tok.kind == "string":
            if stack and stack[-1][1] in LABEL_WRITERS and not stack[-1][2]:
                q.written.add(unquote(tok))
                stack[-1] = (stack[-1][0], stack[-1][1], True)
            i += 1
        else:  # numbers, operators, commas, ranges, Grafana variables
            i += 1
    if stack:
        raise PromQLError("unbalanced '(': missing ')' at the end")
    return q


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads."""
    return parse(expr).names


_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<selector>.*?)\s*,\s*)?"
                           r"(?P<label>[A-Za-z_]\w*)\s*\)\s*$", re.S)
_QUERY_RESULT = re.compile(r"^\s*query_result\((?P<expr>.*)\)\s*$", re.S)


def variable_query(query: str) -> tuple[Query, str | None]:
    """A Grafana Prometheus variable's query: `label_values(selector, label)`,
    `label_values(label)`, `query_result(expr)` or `metrics(regex)`/`label_names()`
    (which read no series): its selectors, and the label whose values it lists."""
    m = _LABEL_VALUES.match(query)
    if m:
        return (parse(m["selector"]) if m["selector"] else Query()), m["label"]
    m = _QUERY_RESULT.match(query)
    if m:
        return parse(m["expr"]), None
    if re.match(r"^\s*(metrics|label_names)\(", query):
        return Query(), None
    raise PromQLError(f"not a Grafana Prometheus variable query: {query!r}")


# --- the dashboard -----------------------------------------------------------------------------

ALLOWANCE = re.compile(
    r"Not in /metrics before (?:its|their) first events?:\s*"
    r"(?P<names>`[^`]+`(?:\s*(?:,|and)\s*`[^`]+`)*)\s*\((?P<reason>[^)]*)\)")


def allowances(description: str) -> dict[str, str]:
    """The series a panel's description says are absent until their first event, each with
    its reason."""
    out = {}
    for m in ALLOWANCE.finditer(description or ""):
        for name in re.findall(r"`([^`]+)`", m["names"]):
            out[name] = " ".join(m["reason"].split())
    return out


@dataclass
class PanelQueries:
    panel: str  # "panel 7 'Title'"
    row: str | None  # the title of the row above it
    queries: list[tuple[str, Query]]  # (refId, parsed expr)
    allowed_absent: dict[str, str]


def panels_of(dashboard: dict) -> list[tuple[dict, str | None]]:
    """Every panel with the title of the row it sits under, rows included, the panels of a
    collapsed row too, in the dashboard's order."""
    out: list[tuple[dict, str | None]] = []
    row = None
    for p in dashboard.get("panels") or []:
        if not isinstance(p, dict):
            out.append((p, row))
            continue
        if p.get("type") == "row":
            row = p.get("title") or ""
            out.append((p, None))
            for inner in p.get("panels") or []:
                out.append((inner, row))
        else:
            out.append((p, row))
    return out


def is_rabbitmq_row(title: str | None) -> bool:
    return title is not None and "rabbitmq" in title.lower()


def datasource_uid(ds) -> str | None:
    if isinstance(ds, dict):
        return ds.get("uid")
    return ds if isinstance(ds, str) else None


@dataclass
class Registered:
    """Series names the sources register: plain (counters, gauges) and histogram families."""
    plain: set[str] = field(default_factory=set)
    histograms: set[str] = field(default_factory=set)

    def series(self) -> set[str]:
        return self.plain | {h + s for h in self.histograms for s in HISTOGRAM_SUFFIXES}


_NAMESPACE = re.compile(r'Registry::new_custom\(\s*Some\(\s*"(?P<ns>[A-Za-z_:][\w:]*)"')
_REGISTRATION = re.compile(
    r'\b(?P<kind>HistogramOpts|Opts|IntCounter|IntGauge|Counter|Gauge|histogram)'
    r'(?:::new|::with_opts)?\(\s*"(?P<name>[A-Za-z_:][\w:]*)"')


def registered_in(text: str, into: Registered) -> None:
    """The metric names one Rust file registers with the `prometheus` crate: `Opts::new`,
    `HistogramOpts::new`, `IntCounter::new`, `IntGauge::new` (and the worker's `histogram`
    helper), under the registry's namespace (`Registry::new_custom(Some("tirage_api"…`)."""
    ns = _NAMESPACE.search(text)
    for m in _REGISTRATION.finditer(text):
        name = m["name"]
        if ns and not name.startswith(ns["ns"] + "_"):
            name = f"{ns['ns']}_{name}"
        hist = m["kind"] in ("HistogramOpts", "histogram")
        (into.histograms if hist else into.plain).add(name)


def registered(root: Path = REPO) -> Registered:
    out = Registered()
    for pattern in SOURCE_GLOBS:
        for path in sorted(root.glob(pattern)):
            registered_in(path.read_text(), out)
    return out


def check_dashboard(dashboard, err, sources: Registered | None) -> list[PanelQueries]:
    """The static checks; returns every panel's parsed queries (the variables' too)."""
    if not isinstance(dashboard, dict):
        err("dashboard", "is not a JSON object")
        return []
    for key in ("title", "uid"):
        if not isinstance(dashboard.get(key), str) or not dashboard[key]:
            err("dashboard", f"no {key}")
    if not isinstance(dashboard.get("schemaVersion"), int):
        err("dashboard", "no schemaVersion")
    if not isinstance(dashboard.get("panels"), list) or not dashboard["panels"]:
        err("dashboard", "no panels")
        return []

    found: list[PanelQueries] = []
    variables = (dashboard.get("templating") or {}).get("list") or []
    ds_vars = [v for v in variables if isinstance(v, dict) and v.get("type") == "datasource"]
    if not any(v.get("name") == DATASOURCE_VAR and v.get("query") == "prometheus"
               for v in ds_vars):
        err("templating", f"no datasource variable `{DATASOURCE_VAR}` of type prometheus")
    for v in variables:
        if not isinstance(v, dict) or v.get("type") != "query":
            continue
        where = f"variable {v.get('name')!r}"
        if datasource_uid(v.get("datasource")) != DATASOURCE_REF:
            err(where, f"its datasource is not {DATASOURCE_REF}")
        query = v.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if not isinstance(query, str) or not query.strip():
            err(where, "no query")
            continue
        try:
            parsed, _label = variable_query(query)
        except PromQLError as e:
            err(where, str(e))
            continue
        found.append(PanelQueries(where, None, [("query", parsed)], {}))

    ids: dict[object, str] = {}
    for p, row in panels_of(dashboard):
        if not isinstance(p, dict):
            err("panels", f"{p!r} is not a panel object")
            continue
        title = p.get("title") or ""
        where = f"panel {p.get('id')} {title!r}"
        pid = p.get("id")
        if not isinstance(pid, int) or isinstance(pid, bool):
            err(where, "no integer id")
        elif pid in ids:
            err(where, f"id {pid} is also {ids[pid]}'s")
        else:
            ids[pid] = where
        grid = p.get("gridPos")
        if not (isinstance(grid, dict) and all(isinstance(grid.get(k), int)
                                               for k in ("h", "w", "x", "y"))):
            err(where, "no gridPos with h, w, x, y")
        elif grid["x"] < 0 or grid["w"] < 1 or grid["x"] + grid["w"] > 24:
            err(where, "gridPos outside the 24 columns")
        if p.get("type") == "row":
            if p.get("targets"):
                err(where, "a row with targets")
            continue
        if not title:
            err(where, "no title")
        if datasource_uid(p.get("datasource")) != DATASOURCE_REF:
            err(where, f"its datasource is not {DATASOURCE_REF}")
        targets = p.get("targets")
        if not isinstance(targets, list) or not targets:
            err(where, "no targets")
            continue
        queries, refs = [], set()
        for t in targets:
            ref = t.get("refId") if isinstance(t, dict) else None
            if not ref:
                err(where, "a target without refId")
            elif ref in refs:
                err(where, f"refId {ref} twice")
            refs.add(ref)
            if not isinstance(t, dict):
                continue
            if "datasource" in t and datasource_uid(t["datasource"]) != DATASOURCE_REF:
                err(f"{where} {ref}", f"its datasource is not {DATASOURCE_REF}")
            expr = t.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                err(f"{where} {ref}", "no expr")
                continue
            try:
                q = parse(expr)
            except PromQLError as e:
                err(f"{where} {ref}", f"PromQL: {e}")
                continue
            if not q.selectors:
                err(f"{where} {ref}", "reads no series")
            queries.append((ref, q))
        allowed = allowances(p.get("description") or "")
        found.append(PanelQueries(where, row, queries, allowed))

    for pq in found:
        used = {n for _, q in pq.queries for n in q.names}
        for ref, q in pq.queries:
            for name in sorted(q.names):
                here = f"{pq.panel} {ref}"
                if ":" in name:
                    err(here, f"{name} is a recording rule: read the raw series")
                elif name.startswith(RABBITMQ_PREFIX):
                    if not is_rabbitmq_row(pq.row):
                        err(here, f"{name} needs RabbitMQ's scrape: only panels under a "
                                  "RabbitMQ row may read it")
                elif not name.startswith(TIRAGE_PREFIXES):
                    err(here, f"{name} is neither Tirage's nor RabbitMQ's")
                elif is_rabbitmq_row(pq.row):
                    err(here, f"{name} is Tirage's own: not under the RabbitMQ row")
                elif sources is not None and name not in sources.series():
                    if name in sources.histograms:
                        err(here, f"{name} is a histogram: read {name}_bucket, _sum or _count")
                    else:
                        err(here, f"{name} is registered by no process "
                                  f"({', '.join(SOURCE_GLOBS)})")
        for name, reason in pq.allowed_absent.items():
            if name not in used:
                err(pq.panel, f"its description allows {name} absent, which it does not read")
            elif name.startswith(RABBITMQ_PREFIX):
                err(pq.panel, f"{name} needs no allowance: RabbitMQ's series are not checked")
            if not reason.strip():
                err(pq.panel, f"no reason why {name} may be absent")
    return found


# --- /metrics dumps ----------------------------------------------------------------------------

_SAMPLE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)\s*(?P<rest>.*)$")
_LABEL = re.compile(r'\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*,?')


@dataclass
class Dump:
    path: str
    samples: dict[str, set[str]] = field(default_factory=dict)  # sample name -> label names
    types: dict[str, str] = field(default_factory=dict)  # family -> counter, histogram, ...


def parse_dump(text: str, path: str = "dump") -> Dump:
    """The sample names of a Prometheus text-format exposition, with their label names."""
    dump = Dump(path)
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                dump.types[parts[2]] = parts[3].strip()
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError(f"{path}:{n}: not a sample line: {line[:80]!r}")
        labels: set[str] = set()
        rest = m["rest"]
        if rest.startswith("{"):
            body, k = rest[1:], 0
            while True:
                if body[k:].lstrip().startswith("}"):
                    break
                lm = _LABEL.match(body, k)
                if not lm:
                    raise ValueError(f"{path}:{n}: bad labels: {line[:80]!r}")
                labels.add(lm["name"])
                k = lm.end()
        dump.samples.setdefault(m["name"], set()).update(labels)
    return dump


def check_against_dumps(found: list[PanelQueries], dumps: list[Dump], err,
                        report) -> None:
    """Every non-RabbitMQ name is a sample of some dump (or allowed absent), every label
    matched or grouped on one it carries there (or one the scrape adds)."""
    present: dict[str, set[str]] = {}
    histograms = set()
    for d in dumps:
        for name, labels in d.samples.items():
            present.setdefault(name, set()).update(labels)
        histograms |= {f for f, t in d.types.items() if t in ("histogram", "summary")}
    seen: dict[str, str] = {}
    for pq in found:
        for ref, q in pq.queries:
            here = f"{pq.panel} {ref}"
            own = [s for s in q.selectors if not s.name.startswith(RABBITMQ_PREFIX)]
            if not own:
                for s in q.selectors:
                    seen.setdefault(s.name, "not checked (RabbitMQ's scrape)")
                continue
            complete = True
            for s in own:
                if s.name in present:
                    holders = [d.path for d in dumps if s.name in d.samples]
                    seen[s.name] = f"in {len(holders)} of {len(dumps)} dumps"
                    for label in sorted(s.labels - present[s.name] - SCRAPE_LABELS):
                        err(here, f"{s.name} has no label {label} in any dump")
                elif s.name in pq.allowed_absent:
                    complete = False
                    seen.setdefault(s.name, f"absent, allowed: {pq.allowed_absent[s.name]}")
                elif s.name in histograms:
                    complete = False
                    err(here, f"{s.name} is a histogram family: read {s.name}_bucket, _sum "
                              "or _count")
                else:
                    complete = False
                    err(here, f"{s.name} is in none of the dumps")
            if complete:
                known = set(SCRAPE_LABELS) | q.written
                for s in q.selectors:
                    known |= present.get(s.name, set())
                for label in sorted(q.grouping - known):
                    err(here, f"groups on {label}, a label none of its series carries")
    for name in sorted(seen):
        report(f"  {name}: {seen[name]}")


# --- command line ------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dashboard", type=Path)
    ap.add_argument("--metrics", nargs="+", type=Path, metavar="FILE",
                    help="Prometheus text-format dumps of the processes' /metrics")
    ap.add_argument("--repo", type=Path, default=REPO,
                    help="the repository whose metrics sources list the registered series")
    args = ap.parse_args(argv)

    errors: list[str] = []

    def err(where: str, msg: str) -> None:
        errors.append(f"{where}: {msg}")

    try:
        dashboard = json.loads(args.dashboard.read_text())
    except (OSError, ValueError) as e:
        print(f"{args.dashboard}: not readable JSON: {e}", file=sys.stderr)
        return 1
    sources = registered(args.repo)
    if not sources.series():
        err("sources", f"no metric registered in {', '.join(SOURCE_GLOBS)} under {args.repo}")
    found = check_dashboard(dashboard, err, sources)
    panels = sum(1 for pq in found if pq.panel.startswith("panel"))
    queries = sum(len(pq.queries) for pq in found)
    names = {n for pq in found for _, q in pq.queries for n in q.names}
    print(f"{args.dashboard}: {panels} panels, {queries} queries, {len(names)} series")
    if args.metrics:
        dumps = []
        for path in args.metrics:
            try:
                dumps.append(parse_dump(path.read_text(), str(path)))
            except (OSError, ValueError) as e:
                err(str(path), str(e))
        if dumps:
            print(f"against {len(dumps)} /metrics dumps:")
            check_against_dumps(found, dumps, err, print)
    if errors:
        for e in errors:
            print(f"  ERROR {e}", file=sys.stderr)
        print(f"dashboard: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print("dashboard: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
