//! Text from producers, made safe to print on an operator's terminal.
//!
//! A message body or a dead-letter reason is written by whoever produced the message. Printed
//! raw, its control characters reach the terminal: escape sequences set the window title,
//! colours or clear the screen, a carriage return overwrites what was printed before it, and a
//! bidirectional override makes text read differently from what it is. [`escape`] writes every
//! such character as `\u{..}` (`\r`, `\n` and `\t` as those two characters), so what the
//! operator sees is what is there. JSON output needs no escaping: it is exact, and JSON escapes
//! control characters itself.

/// Whether a character changes how the terminal shows text instead of being shown: control
/// characters (C0, DEL, C1, which includes the 8-bit CSI), bidirectional controls, line and
/// paragraph separators, and invisible formatting characters.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}'                  // Arabic letter mark
            | '\u{200B}'..='\u{200F}'   // zero-width characters, LRM, RLM
            | '\u{2028}'..='\u{202E}'   // line/paragraph separators, bidi embeddings and overrides
            | '\u{2060}'..='\u{206F}'   // word joiner, invisible operators, bidi isolates
            | '\u{FEFF}'                // zero-width no-break space
            | '\u{FFF9}'..='\u{FFFB}'   // interlinear annotation
        )
}

/// `text` with every character that would act on the terminal written out as an escape.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// Writes `text` to stdout. A reader that stopped early (`fleet ... | head`: a broken pipe) ends
/// the output quietly, as a Unix tool does, instead of the panic `print!` would raise.
///
/// # Errors
/// Any other write error.
pub fn write_stdout(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_written_out() {
        assert_eq!(
            escape("a\u{1b}]0;title\u{7}b\u{0}c\u{9b}2J\u{202E}txt.exe\r\n\t"),
            "a\\u{1b}]0;title\\u{7}b\\u{0}c\\u{9b}2J\\u{202e}txt.exe\\r\\n\\t"
        );
        assert_eq!(escape("plain ü 😀 {\"a\": 1}"), "plain ü 😀 {\"a\": 1}");
        assert_eq!(
            escape("\u{2066}x\u{2069}\u{FEFF}"),
            "\\u{2066}x\\u{2069}\\u{feff}"
        );
    }
}
