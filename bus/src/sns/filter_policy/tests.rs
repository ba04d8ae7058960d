//! Unit tests of the filter policy evaluator, case by case.
use super::*;
use FilterPolicyError as E;
use FilterScope::{MessageAttributes as Attrs, MessageBody as Body};

fn attrs(pairs: &[(&str, AttributeValue)]) -> MessageAttributes {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn policy(json: &str, scope: FilterScope) -> FilterPolicy {
    FilterPolicy::parse(json, scope).expect("valid policy")
}

fn err(json: &str, scope: FilterScope) -> FilterPolicyError {
    FilterPolicy::parse(json, scope).expect_err("invalid policy")
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::string(v)
}

fn num(v: &str) -> AttributeValue {
    AttributeValue::number(v)
}

fn arr(v: &str) -> AttributeValue {
    AttributeValue::string_array(v)
}

/// `n` distinct string values, comma separated.
fn values(n: usize) -> String {
    (0..n)
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(",")
}

/// One test per case: attribute-scope policy, value of attribute `k`, expected match.
macro_rules! attr_cases {
    ($($name:ident: $policy:literal, $value:expr => $want:literal;)+) => {$(
        #[test]
        fn $name() {
            let got = policy($policy, Attrs).matches(&attrs(&[("k", $value)]), "");
            assert_eq!(got, $want, "{}", $policy);
        }
    )+};
}

/// One test per case: body-scope policy, message body, expected match.
macro_rules! body_cases {
    ($($name:ident: $policy:literal, $body:literal => $want:literal;)+) => {$(
        #[test]
        fn $name() {
            let got = policy($policy, Body).matches(&MessageAttributes::new(), $body);
            assert_eq!(got, $want, "{} vs {}", $policy, $body);
        }
    )+};
}

/// One test per case: a policy that must be rejected with the named error variant.
macro_rules! error_cases {
    ($($name:ident: $scope:ident $policy:literal => $want:ident;)+) => {$(
        #[test]
        fn $name() {
            let got = err($policy, $scope);
            assert!(matches!(got, E::$want { .. }), "{}: {got:?}", $policy);
        }
    )+};
}

attr_cases! {
    exact_hit: r#"{"k":["rugby","tennis"]}"#, s("tennis") => true;
    exact_is_case_sensitive: r#"{"k":["rugby"]}"#, s("Rugby") => false;
    prefix_hit: r#"{"k":[{"prefix":"bas"}]}"#, s("basketball") => true;
    prefix_miss: r#"{"k":[{"prefix":"bas"}]}"#, s("rugby") => false;
    suffix_hit: r#"{"k":[{"suffix":"ball"}]}"#, s("football") => true;
    suffix_miss: r#"{"k":[{"suffix":"ball"}]}"#, s("rugby") => false;
    ignore_case_hit: r#"{"k":[{"equals-ignore-case":"RuGbY"}]}"#, s("rugby") => true;
    ignore_case_miss: r#"{"k":[{"equals-ignore-case":"rugby"}]}"#, s("rugby7") => false;
    anything_but_value: r#"{"k":[{"anything-but":"x"}]}"#, s("y") => true;
    anything_but_list_miss: r#"{"k":[{"anything-but":["a","b"]}]}"#, s("b") => false;
    anything_but_prefix: r#"{"k":[{"anything-but":{"prefix":"or"}}]}"#, s("data") => true;
    anything_but_prefix_hit: r#"{"k":[{"anything-but":{"prefix":"or"}}]}"#, s("or1") => false;
    anything_but_suffix_hit: r#"{"k":[{"anything-but":{"suffix":".t"}}]}"#, s("a.t") => false;
    anything_but_number_miss: r#"{"k":[{"anything-but":[100,500]}]}"#, num("1e2") => false;
    numeric_equals_exponent: r#"{"k":[{"numeric":["=",301.5]}]}"#, num("3.015e2") => true;
    numeric_top_inclusive: r#"{"k":[{"numeric":[">",0,"<=",5]}]}"#, num("5") => true;
    numeric_bottom_exclusive: r#"{"k":[{"numeric":[">",0,"<=",5]}]}"#, num("0") => false;
    numeric_less_than: r#"{"k":[{"numeric":["<",0]}]}"#, num("-0.5") => true;
    numeric_five_decimals: r#"{"k":[{"numeric":["=",1]}]}"#, num("1.000001") => true;
    bare_number_is_numeric: r#"{"k":[100]}"#, num("100.0") => true;
    number_vs_string_attr: r#"{"k":[100]}"#, s("100") => false;
    string_vs_number_attr: r#"{"k":["100"]}"#, num("100") => false;
    huge_number_not_numeric: r#"{"k":[{"numeric":[">",0]}]}"#, num("2e9") => false;
    exists_true: r#"{"k":[{"exists":true}]}"#, s("v") => true;
    exists_false_when_present: r#"{"k":[{"exists":false}]}"#, s("v") => false;
    binary_fails_exists: r#"{"k":[{"exists":true}]}"#, AttributeValue::binary([1]) => false;
    binary_is_absent: r#"{"k":[{"exists":false}]}"#, AttributeValue::binary([1]) => true;
    array_any_element: r#"{"k":["rugby"]}"#, arr(r#"["soccer","rugby"]"#) => true;
    array_no_element: r#"{"k":["rugby"]}"#, arr(r#"["baseball"]"#) => false;
    array_numbers: r#"{"k":[{"numeric":[">",10]}]}"#, arr("[1,20]") => true;
    array_anything_but: r#"{"k":[{"anything-but":["x"]}]}"#, arr(r#"["a","b"]"#) => true;
    array_anything_but_any: r#"{"k":[{"anything-but":["x"]}]}"#, arr(r#"["x","b"]"#) => false;
    bad_array_still_exists: r#"{"k":[{"exists":true}]}"#, arr("nope") => true;
}

body_cases! {
    body_exact: r#"{"k":["v"]}"#, r#"{"k":"v","other":1}"# => true;
    body_nested: r#"{"a":{"b":["v"]}}"#, r#"{"a":{"b":"v","c":1}}"# => true;
    body_nested_miss: r#"{"a":{"b":["v"]}}"#, r#"{"a":{"b":"w"},"b":"v"}"# => false;
    body_missing_key: r#"{"k":["v"]}"#, "{}" => false;
    body_array_any: r#"{"tags":["b"]}"#, r#"{"tags":["a","b"]}"# => true;
    body_array_objects: r#"{"i":{"s":[{"prefix":"X"}]}}"#,
        r#"{"i":[{"s":"A"},{"s":"X"}]}"# => true;
    body_numeric: r#"{"p":[{"numeric":[">=",100]}]}"#, r#"{"p":1.5e2}"# => true;
    body_numeric_vs_string: r#"{"p":[{"numeric":[">=",100]}]}"#, r#"{"p":"150"}"# => false;
    body_exists_null_leaf: r#"{"a":{"b":[{"exists":true}]}}"#, r#"{"a":{"b":null}}"# => true;
    body_exists_not_object: r#"{"a":[{"exists":true}]}"#, r#"{"a":{"b":1}}"# => false;
    body_exists_false_empty: r#"{"a":[{"exists":false}]}"#, r#"{"a":[]}"# => true;
    body_anything_but_any: r#"{"k":[{"anything-but":"x"}]}"#, r#"{"k":["x","y"]}"# => true;
    body_anything_but_missing: r#"{"k":[{"anything-but":"x"}]}"#, r#"{"j":"y"}"# => false;
    body_suffix: r#"{"k":[{"suffix":".png"}]}"#, r#"{"k":"a.png"}"# => true;
    body_ignore_case: r#"{"k":[{"equals-ignore-case":"ABC"}]}"#, r#"{"k":"aBc"}"# => true;
    body_not_json: r#"{"k":[{"exists":false}]}"#, "plain text" => false;
    body_or_nested_hit: r#"{"a":{"$or":[{"b":["1"]},{"c":{"d":["2"]}}]}}"#,
        r#"{"a":{"c":{"d":"2"}}}"# => true;
    body_or_nested_miss: r#"{"a":{"$or":[{"b":["1"]},{"c":["2"]}]}}"#,
        r#"{"b":"1","c":"2"}"# => false;
}

error_cases! {
    invalid_json: Attrs "{" => InvalidJson;
    root_not_object: Attrs "[]" => NotAnObject;
    empty_array: Attrs r#"{"k":[]}"# => EmptyArray;
    empty_nested_object: Body r#"{"a":{"b":{}}}"# => EmptyObject;
    empty_or_alternative: Body r#"{"$or":[{},{"a":[1]}]}"# => EmptyObject;
    scalar_not_array: Body r#"{"k":"v"}"# => ExpectedArray;
    array_match_value: Attrs r#"{"k":[["v"]]}"# => InvalidMatchValue;
    nested_attr_policy: Attrs r#"{"a":{"b":["c"]}}"# => NestedInAttributeScope;
    unknown_operator: Attrs r#"{"k":[{"contains":"x"}]}"# => UnknownOperator;
    two_operators: Attrs r#"{"k":[{"prefix":"a","suffix":"b"}]}"# => OperatorArity;
    prefix_not_string: Attrs r#"{"k":[{"prefix":1}]}"# => InvalidOperand;
    exists_not_bool: Attrs r#"{"k":[{"exists":"yes"}]}"# => InvalidOperand;
    anything_but_empty: Attrs r#"{"k":[{"anything-but":[]}]}"# => InvalidOperand;
    anything_but_bad_prefix: Attrs r#"{"k":[{"anything-but":{"prefix":1}}]}"# => InvalidOperand;
    numeric_not_array: Attrs r#"{"k":[{"numeric":5}]}"# => InvalidNumeric;
    numeric_bad_operator: Attrs r#"{"k":[{"numeric":["!",1]}]}"# => InvalidNumeric;
    numeric_string_operand: Attrs r#"{"k":[{"numeric":["=","1"]}]}"# => InvalidNumeric;
    numeric_upper_first: Attrs r#"{"k":[{"numeric":["<",5,">",1]}]}"# => InvalidNumeric;
    numeric_empty_range: Attrs r#"{"k":[{"numeric":[">",5,"<",1]}]}"# => InvalidNumeric;
    numeric_equals_range: Attrs r#"{"k":[{"numeric":["=",1,"<",2]}]}"# => InvalidNumeric;
    number_too_large: Attrs r#"{"k":[1e10]}"# => NumberOutOfRange;
    or_with_operators_is_a_key: Attrs
        r#"{"$or":[{"numeric":1},{"prefix":"a"}]}"# => InvalidNumeric;
    six_keys: Attrs r#"{"a":[1],"b":[1],"c":[1],"d":[1],"e":[1],"f":[1]}"# => TooManyKeys;
}

#[test]
fn all_keys_must_match() {
    let p = policy(r#"{"a":["x"],"b":["y"]}"#, Attrs);
    assert!(p.matches(&attrs(&[("a", s("x")), ("b", s("y")), ("c", s("z"))]), ""));
    assert!(!p.matches(&attrs(&[("a", s("x")), ("b", s("n"))]), ""));
    assert!(!p.matches(&attrs(&[("a", s("x"))]), ""));
}

#[test]
fn or_operator_nests_and_combines_with_keys() {
    let p = r#"{"src":["cw"],"$or":[{"m":["cpu"]},{"n":["ec2"],"$or":[{"c":["3"]},{"d":["4"]}]}]}"#;
    let p = policy(p, Attrs);
    assert!(p.matches(&attrs(&[("src", s("cw")), ("m", s("cpu"))]), ""));
    assert!(p.matches(
        &attrs(&[("src", s("cw")), ("n", s("ec2")), ("d", s("4"))]),
        ""
    ));
    assert!(!p.matches(&attrs(&[("src", s("cw")), ("n", s("ec2"))]), ""));
    assert!(!p.matches(&attrs(&[("m", s("cpu"))]), ""));
}

#[test]
fn anything_but_or_exists_false_accepts_absence() {
    let p = policy(r#"{"k":[{"anything-but":"x"},{"exists":false}]}"#, Attrs);
    assert!(p.matches(&MessageAttributes::new(), ""));
    assert!(!p.matches(&attrs(&[("k", s("x"))]), ""));
}

#[test]
fn empty_policy_matches_everything_and_scopes_are_separate() {
    let p = policy("{}", Body);
    assert!(p.is_empty() && p.matches(&MessageAttributes::new(), "not json"));
    assert_eq!(p.scope(), Body);
    let by_attr = policy(r#"{"k":["v"]}"#, Attrs);
    assert!(!by_attr.matches(&MessageAttributes::new(), r#"{"k":"v"}"#));
    let by_body = policy(r#"{"k":["v"]}"#, Body);
    assert!(!by_body.matches(&attrs(&[("k", s("v"))]), "{}"));
}

#[test]
fn limits_count_top_level_keys_and_multiply_combinations() {
    let p = r#"{"a":[1],"b":[1],"c":[1],"d":[1],"e":{"f":[1],"g":[1]}}"#;
    assert!(FilterPolicy::parse(p, Body).is_ok());
    let p = r#"{"a":[1],"b":[1],"$or":[{"c":[1]},{"d":[1],"e":[1],"f":[1],"g":[1]}]}"#;
    assert_eq!(err(p, Attrs), E::TooManyKeys { count: 6 });
    let ok = format!(
        r#"{{"a":[{}],"b":[{}],"c":[{}]}}"#,
        values(6),
        values(5),
        values(5)
    );
    assert!(FilterPolicy::parse(&ok, Attrs).is_ok());
    let over = format!(r#"{{"a":[{}],"b":[{}]}}"#, values(151), values(1));
    assert_eq!(err(&over, Attrs), E::TooComplex { combinations: 151 });
}

#[test]
fn combinations_weight_nested_keys_by_depth() {
    let p = |n| {
        format!(
            r#"{{"Records":{{"s3":{{"object":{{"key":[{}]}}}}}}}}"#,
            values(n)
        )
    };
    assert!(FilterPolicy::parse(&p(37), Body).is_ok());
    assert_eq!(err(&p(38), Body), E::TooComplex { combinations: 152 });
}

#[test]
fn combinations_add_across_or_alternatives() {
    let p = |n| {
        format!(
            r#"{{"a":[{}],"$or":[{{"b":[1,2,3]}},{{"c":[1,2]}}]}}"#,
            values(n)
        )
    };
    assert!(FilterPolicy::parse(&p(30), Attrs).is_ok());
    assert_eq!(err(&p(31), Attrs), E::TooComplex { combinations: 155 });
}

#[test]
fn errors_name_the_key_path() {
    let e = err(r#"{"a":{"b":[{"exists":1}]}}"#, Body);
    assert_eq!(e.to_string(), "`a.b`: `exists` expects true or false");
    let e = err(r#"{"k":[1e10]}"#, Attrs).to_string();
    assert_eq!(
        e,
        "`k`: number 10000000000 is outside the range -1e9 to 1e9"
    );
    let big = format!(r#"{{"k":["{}"]}}"#, "x".repeat(MAX_POLICY_BYTES));
    assert!(matches!(err(&big, Attrs), E::TooLarge { .. }));
}
