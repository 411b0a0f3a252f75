//! A first pass over YAML text that refuses nesting deeper than the parse allows, before that
//! parse spends time in proportion to depth × length: libyaml keeps one possible key per open
//! flow collection and walks them all at every token, and serde_norway reads the whole event
//! stream before its own depth check, so 100,000 `[` (200 kB) took minutes. This pass streams
//! libyaml's events and stops at the first level too deep, a few thousand tokens in.

use std::mem::MaybeUninit;

use super::tree::{Pos, SyntaxError};

/// Lists and mappings open at once, at most: serde_norway's own limit (and JSON's here).
pub const MAX_DEPTH: usize = 128;

/// `Err` at the first list or mapping nested past [`MAX_DEPTH`]. Anything else — a syntax error
/// included — is left to the real parse, which reports it with its own words.
pub fn check_depth(text: &str) -> Result<(), SyntaxError> {
    let mut parser = MaybeUninit::<unsafe_libyaml_norway::yaml_parser_t>::uninit();
    let parser = parser.as_mut_ptr();
    // SAFETY: `parser` points to storage for a parser, which `yaml_parser_initialize` fills
    // (it zeroes it first); on failure nothing was allocated and it is not used again.
    if unsafe { unsafe_libyaml_norway::yaml_parser_initialize(parser) }.fail {
        return Ok(());
    }
    // SAFETY: the parser is initialised; `text` outlives it (it is deleted below, before
    // returning), and its length is the length of the bytes it points to.
    unsafe {
        unsafe_libyaml_norway::yaml_parser_set_encoding(
            parser,
            unsafe_libyaml_norway::YAML_UTF8_ENCODING,
        );
        unsafe_libyaml_norway::yaml_parser_set_input_string(
            parser,
            text.as_ptr(),
            text.len() as u64,
        );
    }
    let mut depth = 0usize;
    let found = loop {
        let mut event = MaybeUninit::<unsafe_libyaml_norway::yaml_event_t>::uninit();
        let event = event.as_mut_ptr();
        // SAFETY: the parser is initialised and has input; `event` is storage for one event,
        // which the parser fills when it succeeds.
        if unsafe { unsafe_libyaml_norway::yaml_parser_parse(parser, event) }.fail {
            break Ok(());
        }
        // SAFETY: the parse succeeded, so `event` is initialised; it is read, then deleted once.
        let (kind, mark) = unsafe {
            let read = ((*event).type_, (*event).start_mark);
            unsafe_libyaml_norway::yaml_event_delete(event);
            read
        };
        match kind {
            unsafe_libyaml_norway::YAML_SEQUENCE_START_EVENT
            | unsafe_libyaml_norway::YAML_MAPPING_START_EVENT => {
                depth += 1;
                if depth > MAX_DEPTH {
                    break Err(SyntaxError {
                        pos: Some(Pos {
                            line: mark.line as usize + 1,
                            column: mark.column as usize + 1,
                        }),
                        message: format!("lists and mappings nested more than {MAX_DEPTH} deep"),
                    });
                }
            }
            unsafe_libyaml_norway::YAML_SEQUENCE_END_EVENT
            | unsafe_libyaml_norway::YAML_MAPPING_END_EVENT => {
                depth = depth.saturating_sub(1);
            }
            unsafe_libyaml_norway::YAML_STREAM_END_EVENT => break Ok(()),
            _ => {}
        }
    };
    // SAFETY: the parser was initialised above and is not used after this.
    unsafe { unsafe_libyaml_norway::yaml_parser_delete(parser) };
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_flow_nesting_is_refused_at_once() {
        let deep = format!("apps: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let err = check_depth(&deep).expect_err("too deep");
        assert_eq!(
            err.pos,
            Some(Pos {
                line: 1,
                column: 134
            })
        );
        assert_eq!(err.message, "lists and mappings nested more than 128 deep");
        let fine = format!("apps: {}{}\n", "[".repeat(100), "]".repeat(100));
        assert_eq!(check_depth(&fine), Ok(()));
    }

    #[test]
    fn block_nesting_counts_too_and_syntax_errors_are_left_alone() {
        let block: String = (0..200)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        let err = check_depth(&block).expect_err("too deep");
        assert_eq!(err.pos.map(|p| p.line), Some(129));
        assert_eq!(check_depth("a: [1\nb: 2"), Ok(()));
        assert_eq!(check_depth("apps:\n  - name: a\n    script: b\n"), Ok(()));
    }
}
