//! Fuzz `kernel_cmdline::parse` with arbitrary bytes.
//!
//! Invariants checked on every input:
//! 1. nothing panics (PID 1 parses /proc/cmdline before anything else);
//! 2. `parse_bytes(bytes)` and, for UTF-8 input, `parse(str)` agree;
//! 3. an accepted plan serializes to JSON; a rejected one lists at least
//!    one error and prints one line per error;
//! 4. tokenizer round trip: when every word can be re-rendered with
//!    `tokenize::quote`, splitting the rendering gives the same words.
#![no_main]

use kernel_cmdline::tokenize::{self, Arg};
use libfuzzer_sys::fuzz_target;

fn render(args: &[Arg<'_>]) -> Option<String> {
    let words: Option<Vec<String>> = args
        .iter()
        .map(|arg| tokenize::quote(&arg.param, arg.value.as_deref()))
        .collect();
    Some(words?.join(" "))
}

fn owned(args: &[Arg<'_>]) -> Vec<(String, Option<String>)> {
    args.iter()
        .map(|a| {
            (
                a.param.to_string(),
                a.value.as_ref().map(ToString::to_string),
            )
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let from_bytes = kernel_cmdline::parse_bytes(data);
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(kernel_cmdline::parse(text), from_bytes);
    }
    match &from_bytes {
        Ok(plan) => {
            let json = serde_json::to_string_pretty(plan);
            assert!(json.is_ok(), "plan did not serialize: {plan:?}");
        }
        Err(rejected) => {
            assert!(!rejected.errors.is_empty());
            // Values are escaped, so only a key holding a newline adds lines.
            assert!(rejected.to_string().lines().count() >= rejected.errors.len());
        }
    }

    let split = tokenize::split_args(data);
    if let Some(params) = render(&split.params) {
        let mut line = params;
        if split.saw_dashes {
            if let Some(init) = render(&split.init_args) {
                line.push_str(" -- ");
                line.push_str(&init);
            } else {
                return;
            }
        }
        // Lossy decoding may have produced U+FFFD, which is fine: the
        // rendering is valid UTF-8 and must split into the same words.
        let again = tokenize::split_args(line.as_bytes());
        assert_eq!(owned(&again.params), owned(&split.params), "line {line:?}");
        assert_eq!(
            owned(&again.init_args),
            owned(&split.init_args),
            "line {line:?}"
        );
    }
});
