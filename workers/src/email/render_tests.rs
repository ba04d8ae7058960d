//! Unit tests of [`super::render`]: escaping by part, strict data, and every failure's reason.

#![allow(clippy::unwrap_used)]

use serde_json::{Map, Value, json};

use super::error::RenderError;
use super::render::Templates;

fn data(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// One template `t` from its subject, text and optional HTML.
fn one(subject: &str, text: &str, html: Option<&str>) -> Templates {
    let mut files = vec![("t/subject.txt", subject), ("t/text.txt", text)];
    if let Some(html) = html {
        files.push(("t/html.html", html));
    }
    Templates::from_files("memory", files)
}

#[test]
fn renders_every_part_and_trims_the_subject() {
    let t = one(
        "Hello {{ name }}\n",
        "Dear {{ name }},\nbye\n",
        Some("<p>{{ name }}</p>"),
    );
    let r = t.render("t", &data(json!({"name": "Ada"}))).unwrap();
    assert_eq!(r.subject, "Hello Ada");
    assert_eq!(r.text, "Dear Ada,\nbye\n");
    assert_eq!(r.html.as_deref(), Some("<p>Ada</p>"));
}

#[test]
fn a_template_without_html_renders_none() {
    let t = one("s", "text", None);
    let r = t.render("t", &Map::new()).unwrap();
    assert_eq!(r.html, None);
}

#[test]
fn html_is_escaped_but_subject_and_text_are_verbatim() {
    let t = one("Re: {{ v }}", "{{ v }}", Some("<p>{{ v }}</p>"));
    let v = r#"<script>alert("x")</script> & 'q'"#;
    let r = t.render("t", &data(json!({ "v": v }))).unwrap();
    assert_eq!(r.subject, format!("Re: {v}"));
    assert_eq!(r.text, v);
    let html = r.html.unwrap();
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(html.contains("&amp;"), "{html}");
    assert!(html.contains("&quot;x&quot;"), "{html}");
}

#[test]
fn a_missing_variable_is_an_error_naming_it_and_the_template() {
    for (subject, text, html) in [
        ("{{ absent }}", "x", None),
        ("s", "a {{ absent }} b", None),
        ("s", "x", Some("<p>{{ absent }}</p>")),
    ] {
        let t = one(subject, text, html);
        let e = t.render("t", &data(json!({"present": 1}))).unwrap_err();
        assert!(
            matches!(&e, RenderError::DataMissing { template, variable }
                if template == "t" && variable == "absent"),
            "{e:?}"
        );
        assert_eq!(e.label(), "template_data_missing");
        assert_eq!(
            e.to_string(),
            "template \"t\" needs \"absent\", which its data lacks"
        );
    }
}

#[test]
fn a_missing_attribute_of_a_list_item_is_missing_data() {
    let t = one(
        "s",
        "{% for item in items %}{{ item.sku }} {{ item.colour }}{% endfor %}",
        None,
    );
    let e = t
        .render("t", &data(json!({"items": [{"sku": "A"}]})))
        .unwrap_err();
    assert!(
        matches!(&e, RenderError::DataMissing { variable, .. } if variable == "item.colour"),
        "{e:?}"
    );
}

#[test]
fn a_missing_variable_is_an_error_in_conditions_and_loops_too() {
    for text in [
        "{% if absent %}y{% endif %}",
        "{% for x in absent %}{{ x }}{% endfor %}",
        "{{ absent | money(currency) }}",
    ] {
        let t = one("s", text, None);
        let e = t
            .render("t", &data(json!({"currency": "EUR"})))
            .unwrap_err();
        assert!(
            matches!(&e, RenderError::DataMissing { variable, .. } if variable == "absent"),
            "{text}: {e:?}"
        );
    }
}

#[test]
fn a_missing_currency_of_the_money_filter_is_missing_data() {
    let t = one("s", "{{ cents | money(currency) }}", None);
    let e = t.render("t", &data(json!({"cents": 5}))).unwrap_err();
    assert!(
        matches!(&e, RenderError::DataMissing { variable, .. } if variable == "currency"),
        "{e:?}"
    );
}

#[test]
fn optional_data_is_written_with_is_defined() {
    let t = one(
        "s",
        "{% if note is defined %}note: {{ note }}{% else %}none{% endif %}",
        None,
    );
    assert_eq!(t.render("t", &Map::new()).unwrap().text, "none");
    let r = t.render("t", &data(json!({"note": "hi"}))).unwrap();
    assert_eq!(r.text, "note: hi");
}

#[test]
fn a_missing_template_names_itself_and_the_directory() {
    let t = one("s", "x", None);
    let e = t.render("welcome", &Map::new()).unwrap_err();
    assert_eq!(e.label(), "template_missing");
    assert_eq!(e.to_string(), "no template \"welcome\" in memory");
}

#[test]
fn a_template_without_subject_or_text_is_invalid_naming_the_file() {
    let t = Templates::from_files("memory", [("t/text.txt", "x"), ("u/subject.txt", "s")]);
    let e = t.render("t", &Map::new()).unwrap_err();
    assert_eq!(e.label(), "template_invalid");
    assert_eq!(e.to_string(), "template \"t\" has no subject.txt in memory");
    let e = t.render("u", &Map::new()).unwrap_err();
    assert_eq!(e.to_string(), "template \"u\" has no text.txt in memory");
}

#[test]
fn a_syntax_error_names_the_file_and_line_and_spares_the_other_templates() {
    let t = Templates::from_files(
        "memory",
        [
            ("bad/subject.txt", "s"),
            ("bad/text.txt", "line one\nline two\n{% for x in %}\n"),
            ("good/subject.txt", "s"),
            ("good/text.txt", "fine"),
        ],
    );
    let e = t.render("bad", &Map::new()).unwrap_err();
    assert_eq!(e.label(), "template_invalid");
    assert!(
        matches!(&e, RenderError::TemplateInvalid { file, line: 3, .. } if file == "bad/text.txt"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "template file bad/text.txt is invalid at line 3"
    );
    assert!(std::error::Error::source(&e).is_some());
    assert_eq!(t.render("good", &Map::new()).unwrap().text, "fine");
}

#[test]
fn an_unknown_filter_is_an_invalid_template() {
    let t = one("s", "{{ 1 | no_such_filter }}", None);
    let e = t.render("t", &Map::new()).unwrap_err();
    assert_eq!(e.label(), "template_invalid", "{e:?}");
}

#[test]
fn a_line_break_in_the_subject_is_refused_as_header_injection() {
    let t = one("Order {{ id }}", "{{ id }}", None);
    for id in [
        "1\r\nBcc: victim@example.com",
        "1\nX: y",
        "1\rX",
        "1\u{2028}X",
    ] {
        let e = t.render("t", &data(json!({ "id": id }))).unwrap_err();
        assert_eq!(e.label(), "subject_invalid", "{id:?}");
        assert_eq!(
            e.to_string(),
            "template \"t\" renders a subject with a line break"
        );
    }
    // The same value is fine in the text body.
    let t = one("Order", "{{ id }}", None);
    let r = t.render("t", &data(json!({"id": "1\nX: y"}))).unwrap();
    assert_eq!(r.text, "1\nX: y");
}

#[test]
fn a_subject_template_of_two_lines_is_refused() {
    let t = one("line one\nline two\n", "x", None);
    let e = t.render("t", &Map::new()).unwrap_err();
    assert!(matches!(e, RenderError::SubjectLineBreak { .. }), "{e:?}");
}

#[test]
fn an_empty_subject_is_refused() {
    let t = one("{{ s }}", "x", None);
    for s in ["", "   ", "\n"] {
        let e = t.render("t", &data(json!({ "s": s }))).unwrap_err();
        assert!(
            matches!(e, RenderError::SubjectEmpty { .. }),
            "{s:?}: {e:?}"
        );
        assert_eq!(e.label(), "subject_invalid");
    }
}

#[test]
fn the_money_filter_formats_by_currency() {
    let t = one("s", "{{ cents | money(currency) }}", None);
    for (cents, currency, expected) in [
        (json!(1250), "EUR", "12.50 EUR"),
        (json!(0), "EUR", "0.00 EUR"),
        (json!(-1250), "EUR", "-12.50 EUR"),
        (json!(-5), "USD", "-0.05 USD"),
        (json!(1250), "JPY", "1250 JPY"),
        (json!(0), "JPY", "0 JPY"),
        (json!(-300), "JPY", "-300 JPY"),
        (json!(1250), "KWD", "1.250 KWD"),
    ] {
        let r = t
            .render("t", &data(json!({"cents": cents, "currency": currency})))
            .unwrap();
        assert_eq!(r.text, expected);
    }
}

#[test]
fn the_money_filter_refuses_amounts_that_are_not_integers() {
    let t = one("s", "{{ cents | money(currency) }}", None);
    for cents in [json!("12.50"), json!(12.5)] {
        let e = t
            .render("t", &data(json!({"cents": cents, "currency": "EUR"})))
            .unwrap_err();
        assert_eq!(e.label(), "template_data_invalid", "{cents}: {e:?}");
        assert!(e.to_string().starts_with("template file t/text.txt"), "{e}");
    }
}

#[test]
fn loads_template_directories_skipping_files_and_hidden_directories() {
    let dir = std::env::temp_dir().join(format!("fleet-templates-{}", uuid::Uuid::new_v4()));
    let welcome = dir.join("welcome");
    std::fs::create_dir_all(&welcome).unwrap();
    std::fs::create_dir_all(dir.join(".git")).unwrap();
    std::fs::write(dir.join("README.md"), "not a template").unwrap();
    std::fs::write(welcome.join("subject.txt"), "Welcome {{ name }}\n").unwrap();
    std::fs::write(welcome.join("text.txt"), "Hi {{ name }}\n").unwrap();
    std::fs::write(welcome.join("sample.json"), "{}").unwrap();
    let t = Templates::load(&dir).unwrap();
    assert_eq!(t.names().collect::<Vec<_>>(), ["welcome"]);
    let r = t.render("welcome", &data(json!({"name": "Ada"}))).unwrap();
    assert_eq!(
        (r.subject.as_str(), r.text.as_str()),
        ("Welcome Ada", "Hi Ada\n")
    );
    assert_eq!(r.html, None);
    let e = t.render("absent", &Map::new()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("no template \"absent\" in {}", dir.display())
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unreadable_directory_fails_the_load_naming_it() {
    let dir = std::env::temp_dir().join(format!("fleet-absent-{}", uuid::Uuid::new_v4()));
    let e = Templates::load(&dir).unwrap_err();
    assert_eq!(e.label(), "template_unreadable");
    assert_eq!(e.to_string(), format!("cannot read {}", dir.display()));
}
