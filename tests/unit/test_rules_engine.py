"""The rule SQL engine, case by case from the EMQX reference, plus hostile input."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqttlab.rules import NoMatch, RuleRuntimeError, RuleSqlError, compile_sql, rule_test

pytestmark = pytest.mark.unit


def run(sql: str, payload: Any = None, **context: Any) -> Any:
    ctx: dict[str, Any] = {"event_type": "message_publish", "topic": "t/1", **context}
    if payload is not None:
        ctx["payload"] = payload if isinstance(payload, str) else json.dumps(payload)
    return rule_test(sql, ctx)


def test_select_where_and_aliases() -> None:
    sql = 'SELECT payload.temp as t, payload.cmd as cmd FROM "t/#" WHERE t > 20 and cmd.kind = \'x\''
    assert run(sql, {"temp": 25, "cmd": {"kind": "x"}}) == {"t": 25, "cmd": {"kind": "x"}}
    with pytest.raises(NoMatch):
        run(sql, {"temp": 25, "cmd": {"kind": "y"}})
    with pytest.raises(NoMatch):
        run(sql, {"temp": 20, "cmd": {"kind": "x"}})


def test_from_gating() -> None:
    with pytest.raises(NoMatch):
        run('SELECT * FROM "a/#"')  # topic t/1 does not match
    assert run('SELECT topic FROM "a/#", "t/+"') == {"topic": "t/1"}
    assert rule_test('SELECT clientid FROM "$events/client_connected"',
                     {"event_type": "client_connected", "clientid": "c1"}) == {"clientid": "c1"}
    with pytest.raises(NoMatch):
        rule_test('SELECT clientid FROM "$events/client_connected"', {"event_type": "client_disconnected"})
    with pytest.raises(RuleSqlError, match="message_publish"):
        compile_sql('SELECT * FROM "$events/message_publish"')


def test_select_star_has_defaults_and_metadata() -> None:
    out = run('SELECT * FROM "t/#"', {"a": 1})
    assert out["topic"] == "t/1" and out["qos"] == 1 and out["payload"] == '{"a": 1}'
    assert out["metadata"]["rule_id"].startswith("sql_tester:")  # EMQX's source merges metadata into *
    assert out["pub_props"]["User-Property"] == {"foo": "bar"} and out["clientid"] == "c_emqx"
    assert run('SELECT metadata.rule_id as r FROM "t/#"')["r"].startswith("sql_tester:")


def test_quoting() -> None:
    assert run("SELECT 'topic' as a, \"topic\" as b FROM \"t/#\"") == {"a": "topic", "b": "t/1"}
    assert run('SELECT payload.\'User-Property\' as u FROM "t/#"', {"User-Property": 3}) == {"u": 3}


def test_indexes_ranges_lists() -> None:
    p = {"x": [10, 20, 30, 40, 50], "o": [{"y": 1}, {"y": 2}]}
    out = run('SELECT payload.x[1] as a, payload.x[-1] as b, payload.x[2..4] as c, payload.o[2].y as d, '
              '[1, 2] as e, [1..4] as f, [] as g, payload.x[9] as h FROM "t/#"', p)
    assert out == {"a": 10, "b": 50, "c": [20, 30, 40], "d": 2, "e": [1, 2], "f": [1, 2, 3, 4], "g": [], "h": "undefined"}
    with pytest.raises(RuleRuntimeError, match="non_list"):
        run('SELECT payload.o[1].y[1..2] as z FROM "t/#"', p)


def test_as_targets() -> None:
    out = run('SELECT payload.a as c[-0], payload.b as c[-0], payload.z as c[0], 9 as c[2], '
              'payload.a as m.n.o FROM "t/#"', {"a": 1, "b": 2, "z": 0})
    assert out == {"c": [0, 9, 2], "m": {"n": {"o": 1}}}
    out = run("SELECT map_get('k', payload.p, 0) as payload.p.k, payload FROM \"t/#\"", {"a": 1, "p": {}})
    assert out == {"payload": {"a": 1, "p": {"k": 0}}}
    out = run('SELECT payload.d as d, \'n\' as d[1].name FROM "t/#"', {"d": [{"v": 1}]})
    assert out == {"d": [{"v": 1, "name": "n"}]}


def test_implicit_output_keys_keep_path_shape() -> None:
    assert run('SELECT payload.a.b FROM "t/#"', {"a": {"b": 3}}) == {"payload": {"a": {"b": 3}}}


def test_case_both_forms_and_undefined_without_else() -> None:
    sql = ("SELECT CASE WHEN payload.x > 10 THEN 'big' WHEN payload.x > 5 THEN 'mid' END as size, "
           "CASE payload.k WHEN 'a' THEN 1 WHEN 'b' THEN 2 ELSE 0 END as code FROM \"t/#\"")
    assert run(sql, {"x": 11, "k": "b"}) == {"size": "big", "code": 2}
    # no ELSE and no branch: undefined, and the key stays (EMQX's runtime returns undefined)
    assert run(sql, {"x": 1, "k": "z"}) == {"size": "undefined", "code": 0}
    assert run("SELECT CASE payload.n WHEN 1 THEN 'one' ELSE 'other' END as c FROM \"t/#\"", {"n": 1.0}) == {
        "c": "other"}  # the simple form matches exactly: 1.0 is not 1


def test_undefined_semantics() -> None:
    assert run('SELECT is_null(payload.nope) as a, payload.nope = payload.also_nope as b, '
               'payload.nope > 1 as c FROM "t/#"', {}) == {"a": True, "b": True, "c": False}
    with pytest.raises(NoMatch):
        run('SELECT 1 as x FROM "t/#" WHERE payload.nope > 1', {})


def test_operators() -> None:
    out = run("SELECT 1 + 2 as a, 'ab' + 'cd' as b, 7 div 2 as c, -7 div 2 as d, -7 mod 2 as e, 7 / 2 as f, "
              "'2' = 2 as g, topic =~ 't/+' as h, topic =~ 'x/#' as i, 3 <> 4 as j FROM \"t/#\"")
    assert out == {"a": 3, "b": "abcd", "c": 3, "d": -3, "e": -1, "f": 3.5, "g": True, "h": True, "i": False,
                   "j": True}
    with pytest.raises(RuleRuntimeError, match="division by zero"):
        run('SELECT 1 / 0 as x FROM "t/#"')


def test_foreach() -> None:
    p = {"sensors": [{"n": "a", "v": 1}, {"n": "b", "v": 5}, {"n": "c", "v": 9}]}
    sql = 'FOREACH payload.sensors as s DO s.n as name, s.v * 10 as v INCASE s.v > 2 FROM "t/#"'
    assert run(sql, p) == [{"name": "b", "v": 50}, {"name": "c", "v": 90}]
    assert run('FOREACH payload.sensors FROM "t/#"', p)[0]["item"] == {"n": "a", "v": 1}
    assert run('FOREACH payload.nope as x FROM "t/#"', p) == []
    assert run('FOREACH payload.sensors as s DO s.n as n INCASE s.v > 100 FROM "t/#"', p) == []
    chained = 'FOREACH payload.data as d, d.items as i DO i as item FROM "t/#" WHERE is_not_null(d)'
    assert run(chained, {"data": {"items": [1, 2]}}) == [{"item": 1}, {"item": 2}]
    with pytest.raises(NoMatch):
        run('FOREACH payload.sensors as s FROM "t/#" WHERE 1 = 2', p)
    assert run('FOREACH payload FROM "t/#"', [1, 2]) == []  # a bare payload is not decoded
    assert run('FOREACH json_decode(payload) as x DO x FROM "t/#"', [1, 2]) == [{"x": 1}, {"x": 2}]


def test_parse_errors_carry_line_and_column() -> None:
    with pytest.raises(RuleSqlError) as err:
        compile_sql('SELECT a,\n  b +\nFROM "t"')
    assert (err.value.line, err.value.column) == (3, 1)
    with pytest.raises(RuleSqlError, match="undefined function nope"):
        compile_sql('SELECT nope(1) FROM "t"')
    for bad in ["", "SELECT", "DELETE FROM t", 'SELECT * FROM "t" garbage', "SELECT 'unterminated FROM \"t\""]:
        with pytest.raises(RuleSqlError):
            compile_sql(bad)


def test_payload_that_is_not_json() -> None:
    with pytest.raises(RuleRuntimeError, match="decode_json_failed"):
        run('SELECT payload.a as a FROM "t/#"', "not json")
    assert run('SELECT payload FROM "t/#"', "not json") == {"payload": "not json"}


@pytest.mark.parametrize(("expr", "expected"), [
    ("abs(-2)", 2), ("round(2.5)", 3), ("power(2, 10)", 1024.0), ("sqrt(16)", 4.0),
    ("int('42')", 42), ("float('1.5')", 1.5), ("str(12)", "12"), ("bool('true')", True),
    ("is_num(1.5)", True), ("is_str(1)", False), ("is_map(payload)", False), ("is_map(json_decode(payload))", True),
    ("is_array('[1]')", False), ("is_array([1])", True),
    ("lower('AbC')", "abc"), ("upper('a')", "A"), ("trim('  x ')", "x"), ("strlen('hello')", 5),
    ("substr('abcdef', 2)", "cdef"), ("substr('abcdef', 2, 3)", "cde"), ("split('a/b//c', '/')", ["a", "b", "c"]),
    ("concat('a', 'b')", "ab"), ("replace('aXbX', 'X', '-')", "a-b-"), ("pad('ab', 4)", "ab  "),
    ("regex_match('abc123', '[0-9]+')", True), ("regex_replace('a1b2', '[0-9]', '#')", "a#b#"),
    ("nth(2, [1, 2, 3])", 2), ("sublist(2, [1, 2, 3])", [1, 2]), ("first([4, 5])", 4), ("last([4, 5])", 5),
    ("contains(2, [1, 2])", True), ("length([1, 2, 3])", 3),
    ("map_get('a.b', payload)", 1), ("map_get('zz', payload, 'd')", "d"), ("map_put('x', 1, json_decode('{}'))", {"x": 1}),
    ("md5('a')", "0cc175b9c0f1b6a831c399e269772661"), ("sha256('')",
     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("base64_encode('hi')", "aGk="), ("base64_decode('aGk=')", "hi"), ("bin2hexstr('AB')", "4142"),
    ("hexstr2bin('4142')", "AB"), ("json_encode(json_decode('{\"a\":1}'))", '{"a":1}'),
    ("bitand(12, 10)", 8), ("bitor(12, 10)", 14), ("bitxor(12, 10)", 6), ("bitsl(1, 4)", 16), ("bitsr(16, 2)", 4),
    ("rfc3339_to_unix_ts('1970-01-01T00:01:00Z')", 60),
    ("format_date('second', 'Z', '%Y-%m-%d', 86400)", "1970-01-02"),
    ("gunzip(gzip('round trip'))", "round trip"), ("unzip(zip('again'))", "again"),
])
def test_functions(expr: str, expected: Any) -> None:
    assert run(f'SELECT {expr} as r FROM "t/#"', {"a": {"b": 1}})["r"] == expected


@pytest.mark.parametrize(("expr", "expected"), [
    # vectors from EMQX's own emqx_rule_funcs_SUITE / emqx_rule_engine_SUITE and its source
    ("substr('abc', 1)", "bc"), ("substr('abcd', 1, 2)", "bc"), ("substr('', 1)", ""),
    ("split('/a/b//c/', '/')", ["a", "b", "c"]), ("split('a, b ,c', ',')", ["a", " b ", "c"]),
    ("split('/a/b//c/', '/', 'notrim')", ["", "a", "b", "", "c", ""]), ("split('a/b//c/', '/', 'leading')",
                                                                       ["a", "b//c/"]),
    ("split('/a/b/c', '/', 'trailing')", ["/a/b", "c"]), ("split('a/b//c/', '/', 'trailing_notrim')", ["a/b//c", ""]),
    ("split('/', '/', 'leading_notrim')", ["", ""]), ("tokens(' /a/ b /c', ' /')", ["a", "b", "c"]),
    ("pad('abc', 5, 'both')", " abc "), ("pad('abc', 5, 'trailing', 'ex')", "abcexex"),
    ("pad('abc', 5, 'both', 'ex')", "exabcex"), ("pad('abc', 5, 'leading', 'e')", "eeabc"),
    ("replace('ab c  ', ' ', '-', 'trailing')", "ab c -"), ("replace('ab c  ', ' ', '-', 'leading')", "ab-c  "),
    ("regex_replace('accbcd', 'c+', '[&]')", "a[cc]b[c]d"), ("regex_replace('accbcd', 'c+', 'e')", "aebed"),
    ("regex_extract('Date: 2021-05-20', '(\\d{4})-(\\d{2})-(\\d{2})')", ["2021", "05", "20"]),
    ("regex_extract('abc', 'b')", []), ("find('acbcd', 'c', 'trailing')", "cd"), ("find('acbcd', 'e')", ""),
    ("join_to_string([1, 'c'])", "1, c"), ("join_to_string(',', [])", ""), ("ascii('ab')", 97),
    ("int(-3.14)", -4), ("int(1.9)", 1), ("int('1.0')", 1), ("int(true)", 1), ("float('1.0')", 1.0),
    ("float(1)", 1.0), ("str(2.0)", "2.0"), ("str(3.14159265359)", "3.1415926536"), ("str(true)", "true"),
    ("str(json_decode('{\"a\":1}'))", '{"a":1}'), ("bool(1.0)", True), ("bool(0.0)", False),
    ("round(-2.5)", -3), ("power(2, 3)", 8.0), ("nth(2, [1, 2, 3, 4])", 2), ("sublist(4, 1, [1, 2, 3, 4])", [4]),
    ("sublist(5, 2, [1, 2, 3, 4])", []), ("sublist(2, 2, [1, 2, 3, 4])", [2, 3]), ("contains(2.0, [1, 2])", False),
    ("coalesce([payload.nope, 42])", 42), ("coalesce_ne(['', 42])", 42), ("is_null(json_decode('null'))", False),
    ("is_null_var(json_decode('null'))", True), ("map_get('a.c', json_decode('{\"a\":{\"b\":1}}'))", "undefined"),
    ("mget('a.b', json_decode('{\"a.b\":1}'))", 1), ("map_put('a.b', 1, json_decode('{}'))", {"a": {"b": 1}}),
    ("bin2hexstr('AB', '0x')", "0x4142"), ("hexstr2bin('a')", "\n"), ("hexstr2bin('0x4142', '0x')", "AB"),
    ("subbits(hexstr2bin('FF'), 2, 8)", 127), ("subbits(hexstr2bin('FF'), 9, 1)", "undefined"),
    ("bitsr(-8, 6)", -1), ("bitnot(10)", -11), ("bitand(-10, -8)", -16),
    ("format_date('second', '+0800', '%Y-%m-%d %H:%M:%S%:z', 1653561612)", "2022-05-26 18:40:12+08:00"),
    ("format_date('millisecond', '+08:00', '%Y-%m-%d %H:%M:%S.%6N%z', 1708933353472)",
     "2024-02-26 15:42:33.472000+0800"),
    ("date_to_unix_ts('second', '%Y-%m-%d %H:%M:%S', '2022-05-26 10:40:12')", 1653561612),
    ("date_to_unix_ts('second', '%Y-%m-%d %H-%M-%S', '2022-05-26 10:40:12')", 1653561612),
    ("date_to_unix_ts('second', '+08:00', '%Y-%m-%d %H:%M:%S', '2024-02-29 14:31:40')", 1709188300),
    ("rfc3339_to_unix_ts('2024-02-23T15:56:30.87Z', 'millisecond')", 1708703790870),
    ("timezone_to_offset_seconds('-02:00:00')", -7200), ("timezone_to_offset_seconds('+00:01:42')", 102),
    ("bin2hexstr(zip('hello'))", "CB48CDC9C90700"), ("bin2hexstr(zip_compress('hello'))", "789CCB48CDC9C90700062C0215"),
    ("sprintf('Name: ~ts, Count: ~p', 'ABC', 2)", "Name: ABC, Count: 2"), ("sprintf('~.16B', 255)", "FF"),
    ("unescape('\\x41\\x42\\x43')", "ABC"), ("is_empty('{}')", True), ("map_size('{\"a\" : \"b\"}')", 1),
    ("1 + 'a'", "1a"), ("'2' + 3", "23"),
])
def test_emqx_vectors(expr: str, expected: Any) -> None:
    assert run(f'SELECT {expr} as r FROM "t/#"', {})["r"] == expected


def test_emqx_comparison_rules() -> None:
    out = run("SELECT payload.nope != 1 as a, payload.nope = payload.other as b, '1.0' = 1 as c, '01' = 1 as d, "
              "true = 'true' as e, true > 100 as f, 1 = 1.0 as g, 2 in (1, 2) as h, 2 in (1, 2.0) as i "
              "FROM \"t/#\"", {})
    assert out == {"a": False, "b": True, "c": True, "d": True, "e": True, "f": True, "g": True, "h": True,
                   "i": False}
    with pytest.raises(RuleRuntimeError) as err:
        run('SELECT 1 as x FROM "t/#" WHERE payload.msg > 1', {"msg": "hello"})
    assert err.value.emqx_message() == '{"match_conditions_error":"badarg"}'
    with pytest.raises(RuleRuntimeError) as err:
        run('SELECT upper(payload.nope) as x FROM "t/#"', {})
    assert json.loads(err.value.emqx_message()) == {"select_and_transform_error": {
        "reason": "bad_sql_function_argument", "function_name": "upper", "arguments": ["undefined"]}}
    with pytest.raises(RuleRuntimeError, match="decode_json_failed") as err:
        run('SELECT payload.a as a FROM "t/#"', "nope")
    assert err.value.emqx_message() == '{"select_and_transform_error":"decode_json_failed"}'


def test_unix_ts_to_rfc3339_uses_the_local_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert run('SELECT unix_ts_to_rfc3339(0) as r FROM "t/#"')["r"] == "1970-01-01T00:00:00+00:00"
        assert run("SELECT unix_ts_to_rfc3339(1500, 'millisecond') as r FROM \"t/#\"")["r"] == \
            "1970-01-01T00:00:01.500+00:00"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_hostile_inputs_are_bounded() -> None:
    with pytest.raises(RuleRuntimeError, match="too large"):
        run('SELECT [1..100000000] as r FROM "t/#"')
    bomb = base64.b64encode(gzip.compress(b"\0" * (40 << 20))).decode()
    with pytest.raises(RuleRuntimeError, match="exceeds"):
        rule_test('SELECT gunzip(base64_decode(payload)) as r FROM "t/#"',
                  {"event_type": "message_publish", "topic": "t", "payload": bomb})
    with pytest.raises(RuleRuntimeError):
        run("SELECT pad('x', 100000000) as r FROM \"t/#\"")
    with pytest.raises(RuleSqlError, match="nested too deeply"):
        compile_sql("SELECT " + "(" * 500 + "1" + ")" * 500 + ' FROM "t"')
    with pytest.raises(RuleRuntimeError):
        run('SELECT bitsl(1, 100000000) as r FROM "t/#"')
    # catastrophic backtracking in an untrusted regex is cut off instead of hanging the engine
    out = None
    try:
        out = run("SELECT regex_match(payload.s, '^(\\\\w+\\\\s?)*$') as r FROM \"t/#\"", {"s": "a " * 30 + "!"})
    except RuleRuntimeError as exc:
        assert "longer than" in exc.message
    assert out is None or out["r"] is False


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_parser_never_crashes(text: str) -> None:
    try:
        compile_sql(text)
    except RuleSqlError as exc:
        assert exc.line >= 1 and exc.column >= 1


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3), max_leaves=15))
def test_fuzz_payloads_never_crash(payload: Any) -> None:
    sql = ('SELECT payload.a as a, payload.a[1] as b, int(payload.n) as c, upper(payload.s) as d '
           'FROM "t/#" WHERE is_not_null(a) or true')
    try:
        run(sql, payload)
    except (RuleRuntimeError, NoMatch):
        pass
