//! Splitting a command line into `param[=value]` words, byte for byte as the
//! kernel does.
//!
//! This is hand-written on purpose rather than built on a shell-words or
//! argument-parsing crate: the point is to agree with the kernel on every
//! input, including its quirks (quotes toggling anywhere, `=` found inside
//! quotes, half-stripped quotes, `0xA0` counting as a space). A line that
//! the kernel splits one way and PID 1 another is a line where the operator
//! cannot predict what boots. The reference is `next_arg()` in
//! `lib/cmdline.c` and `parse_args()` in `kernel/params.c` (mainline, 6.x).

use std::borrow::Cow;

/// The kernel's `isspace()`: `lib/ctype.c` marks `\t \n \v \f \r`, the space
/// and the Latin-1 no-break space `0xA0` as `_S`.
///
/// The `0xA0` entry means the kernel splits a UTF-8 word in the middle of a
/// character such as `à` (`C3 A0`); [`split_args`] does the same, which is
/// why it works on bytes.
#[must_use]
pub const fn is_kernel_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0xa0)
}

/// One word as `next_arg()` returns it, borrowed from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawArg<'a> {
    /// The part before the first `=` (quotes handled as the kernel does).
    pub param: &'a [u8],
    /// The part after the first `=`, or `None` when the word has no `=`.
    pub value: Option<&'a [u8]>,
}

/// One word decoded as UTF-8 (invalid sequences become U+FFFD); borrowed
/// unless the bytes were not valid UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg<'a> {
    /// The parameter name as written (no `-`/`_` folding here).
    pub param: Cow<'a, str>,
    /// The value, `None` for a bare word such as `ro`.
    pub value: Option<Cow<'a, str>>,
}

impl<'a> From<RawArg<'a>> for Arg<'a> {
    fn from(raw: RawArg<'a>) -> Self {
        Arg {
            param: String::from_utf8_lossy(raw.param),
            value: raw.value.map(String::from_utf8_lossy),
        }
    }
}

impl Arg<'_> {
    /// The word as the kernel hands it to init after `--`:
    /// `repair_env_string()` (init/main.c) puts the `=` back and drops the
    /// value's opening quote, so `x="a b"` becomes `x=a b`.
    #[must_use]
    pub fn to_init_arg(&self) -> String {
        match &self.value {
            Some(value) => format!("{}={}", self.param, value),
            None => self.param.to_string(),
        }
    }
}

/// A command line split like `start_kernel()` splits it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SplitArgs<'a> {
    /// Kernel parameters: every word before the first bare `--`.
    pub params: Vec<Arg<'a>>,
    /// Words after the first bare `--` and before a second one, in the form
    /// the kernel passes them to init (see [`Arg::to_init_arg`]).
    pub init_args: Vec<Arg<'a>>,
    /// Whether a bare `--` ended the kernel parameters.
    pub saw_dashes: bool,
}

fn skip_spaces(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| !is_kernel_space(b))
        .unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// The kernel's `next_arg()`: take one word off the front of `args`.
///
/// `args` must not start with a space (callers skip spaces first, as
/// `parse_args()` does). Returns the word and the rest of the line with
/// leading spaces skipped.
///
/// The quirks, all from `lib/cmdline.c`:
/// 1. a `"` at the very start of the word is dropped and starts a quote;
/// 2. every further `"` toggles the quote state, wherever it is; spaces
///    inside a quote do not end the word;
/// 3. the first `=` splits param from value even inside quotes, except one
///    at index 0 (the kernel's `equals == 0` doubles as "not found", so the
///    search goes on to the next `=`);
/// 4. a value starting with `"` loses that quote, and then the word's last
///    byte is cut if it is a `"` (not necessarily the matching one);
/// 5. a word that started with `"` loses its last byte if that is a `"`.
#[must_use]
pub fn next_arg(args: &[u8]) -> (RawArg<'_>, &[u8]) {
    let quoted = args.first() == Some(&b'"');
    let word: &[u8] = if quoted {
        args.get(1..).unwrap_or_default()
    } else {
        args
    };

    let mut in_quote = quoted;
    let mut equals = 0_usize;
    let mut end = word.len();
    for (i, &byte) in word.iter().enumerate() {
        if is_kernel_space(byte) && !in_quote {
            end = i;
            break;
        }
        if equals == 0 && byte == b'=' {
            equals = i;
        }
        if byte == b'"' {
            in_quote = !in_quote;
        }
    }
    let rest = skip_spaces(word.get(end.saturating_add(1)..).unwrap_or_default());

    // The kernel writes NUL over `args[i-1]` when it is a quote. With i == 0
    // (a lone `"` at the end of the line) that byte is the skipped opening
    // quote, which shows in neither param nor value, so it is ignored here.
    let ends_with_quote = end > 0 && word.get(end - 1) == Some(&b'"');
    let mut cut = end;
    if quoted && ends_with_quote {
        cut = end - 1;
    }

    if equals == 0 {
        let arg = RawArg {
            param: word.get(..cut).unwrap_or_default(),
            value: None,
        };
        return (arg, rest);
    }

    let mut value_start = equals + 1;
    if word.get(value_start) == Some(&b'"') && value_start < end {
        value_start += 1;
        if ends_with_quote {
            cut = end - 1;
        }
    }
    let value = word.get(value_start.min(cut)..cut).unwrap_or_default();
    let arg = RawArg {
        param: word.get(..equals).unwrap_or_default(),
        value: Some(value),
    };
    (arg, rest)
}

/// Every word of `cmdline`, split like `parse_args()`, without the special
/// meaning of `--`. Stops at the first NUL byte: the kernel's command line
/// is a C string, so nothing after a NUL can ever reach it.
pub fn raw_words(cmdline: &[u8]) -> impl Iterator<Item = RawArg<'_>> {
    let end = cmdline
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(cmdline.len());
    let mut rest = skip_spaces(cmdline.get(..end).unwrap_or_default());
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (arg, next) = next_arg(rest);
        rest = next;
        Some(arg)
    })
}

fn is_dashes(arg: &RawArg<'_>) -> bool {
    arg.value.is_none() && arg.param == b"--"
}

/// Split a command line the way `start_kernel()` does: kernel parameters
/// up to the first bare `--` (a word that is exactly `--` after quote
/// handling, so `"--"` counts and `--=x` does not), then init's arguments up
/// to a second bare `--` (the kernel's second `parse_args()` call stops
/// there too and drops the rest).
#[must_use]
pub fn split_args(cmdline: &[u8]) -> SplitArgs<'_> {
    let mut split = SplitArgs::default();
    let mut words = raw_words(cmdline);
    for arg in words.by_ref() {
        if is_dashes(&arg) {
            split.saw_dashes = true;
            break;
        }
        split.params.push(arg.into());
    }
    if split.saw_dashes {
        for arg in words {
            if is_dashes(&arg) {
                break;
            }
            split.init_args.push(arg.into());
        }
    }
    split
}

/// The kernel's `parameq()`: parameter names compare equal when they differ
/// only in `-` versus `_` (kernel/params.c `dash2underscore`).
#[must_use]
pub fn parameq(a: &str, b: &str) -> bool {
    let fold = |c: u8| if c == b'-' { b'_' } else { c };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| fold(x) == fold(y))
}

/// Render one `param[=value]` word so that [`next_arg`] gives exactly
/// `param` and `value` back, quoting the whole word when it holds a space.
///
/// Returns `None` for words the kernel cannot express: an empty param, a
/// param holding `=`, any `"` or NUL (the kernel has no escapes), and a
/// bare `--` (that is the separator).
#[must_use]
pub fn quote(param: &str, value: Option<&str>) -> Option<String> {
    let forbidden = |s: &str| s.bytes().any(|b| b == b'"' || b == 0);
    if param.is_empty()
        || param.contains('=')
        || forbidden(param)
        || value.is_some_and(forbidden)
        || (param == "--" && value.is_none())
    {
        return None;
    }
    let spaced = |s: &str| s.bytes().any(is_kernel_space);
    let word = match value {
        Some(value) => format!("{param}={value}"),
        None => param.to_owned(),
    };
    if spaced(param) || value.is_some_and(spaced) {
        Some(format!("\"{word}\""))
    } else {
        Some(word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Words = Vec<(String, Option<String>)>;
    /// Name, line, expected kernel params, expected init args, saw `--`.
    type DashCase<'a> = (&'a str, &'a str, &'a [&'a str], &'a [&'a str], bool);

    fn words(line: &str) -> Words {
        raw_words(line.as_bytes())
            .map(|raw| {
                let arg = Arg::from(raw);
                (arg.param.into_owned(), arg.value.map(Cow::into_owned))
            })
            .collect()
    }

    fn w(param: &str, value: Option<&str>) -> (String, Option<String>) {
        (param.to_owned(), value.map(str::to_owned))
    }

    /// Each expected outcome was worked out by hand against mainline
    /// `next_arg()` (lib/cmdline.c); the comment says which rule applies.
    #[test]
    fn kernel_quirks_table() {
        let cases: &[(&str, &str, Words)] = &[
            (
                "plain words",
                "ro quiet",
                vec![w("ro", None), w("quiet", None)],
            ),
            (
                "value",
                "root=/dev/sda1",
                vec![w("root", Some("/dev/sda1"))],
            ),
            ("empty value", "x=", vec![w("x", Some(""))]),
            ("first equals splits", "a=b=c", vec![w("a", Some("b=c"))]),
            ("quoted value", "x=\"a b\"", vec![w("x", Some("a b"))]),
            // rule 4: opening quote dropped, last byte is not a quote
            ("quote mid value", "x=\"y\"z", vec![w("x", Some("y\"z"))]),
            // rule 1 + 3: `=` found after the closing quote
            ("quoted param", "\"a b\"=c", vec![w("a b\"", Some("c"))]),
            // rule 1 + 5: whole word quoted
            ("whole word quoted", "\"x=a b\"", vec![w("x", Some("a b"))]),
            ("quoted bare word", "\"a b\"", vec![w("a b", None)]),
            // rule 3: `=` inside quotes still splits
            (
                "equals inside quotes",
                "\"a=b c\" d",
                vec![w("a", Some("b c")), w("d", None)],
            ),
            // rule 2: a quote in the middle protects spaces
            (
                "quote toggles mid word",
                "a\"b c\"d e",
                vec![w("a\"b c\"d", None), w("e", None)],
            ),
            // rule 4 then 5: only one trailing quote is cut
            (
                "double trailing quote",
                "\"x=\"y\"\"",
                vec![w("x", Some("y\""))],
            ),
            // unterminated quote runs to the end of the line
            (
                "unterminated quote",
                "x=\"a b c",
                vec![w("x", Some("a b c"))],
            ),
            ("lone quote", "\"", vec![w("", None)]),
            ("empty quotes", "\"\"", vec![w("", None)]),
            ("quote only value", "x=\"", vec![w("x", Some(""))]),
            ("empty quoted value", "x=\"\"", vec![w("x", Some(""))]),
            // rule 3: `=` at index 0 is "not found"
            ("leading equals", "=a", vec![w("=a", None)]),
            ("leading equals twice", "=a=b", vec![w("=a", Some("b"))]),
            ("quoted leading equals", "\"=a\"", vec![w("=a", None)]),
            (
                "tabs and newline",
                "\ta\n\tb=c\n",
                vec![w("a", None), w("b", Some("c"))],
            ),
            (
                "vertical tab and form feed",
                "a\x0bb\x0cc\rd",
                vec![w("a", None), w("b", None), w("c", None), w("d", None)],
            ),
            (
                "many spaces",
                "   a    b   ",
                vec![w("a", None), w("b", None)],
            ),
            ("empty line", "", vec![]),
            ("only spaces", " \t\n", vec![]),
            ("nul ends the line", "a\0b c", vec![w("a", None)]),
            (
                "trailing quote of unquoted word kept",
                "a\"",
                vec![w("a\"", None)],
            ),
        ];
        for (name, line, expected) in cases {
            assert_eq!(&words(line), expected, "case {name}: {line:?}");
        }
    }

    #[test]
    fn no_break_space_byte_splits_like_the_kernel() {
        // U+00E0 is C3 A0: the kernel's isspace(0xA0) cuts the character.
        let split: Vec<RawArg<'_>> = raw_words("a\u{e0}b".as_bytes()).collect();
        assert_eq!(
            split,
            vec![
                RawArg {
                    param: b"a\xc3",
                    value: None
                },
                RawArg {
                    param: b"b",
                    value: None
                },
            ]
        );
        // Inside quotes it is protected like any space.
        let quoted: Vec<RawArg<'_>> = raw_words("x=\"a\u{e0}b\"".as_bytes()).collect();
        assert_eq!(
            quoted,
            vec![RawArg {
                param: b"x",
                value: Some("a\u{e0}b".as_bytes())
            }]
        );
    }

    #[test]
    fn dashes_split_kernel_from_init_args() {
        let cases: &[DashCase<'_>] = &[
            ("no dashes", "a b", &["a", "b"], &[], false),
            ("dashes", "a -- b c=d", &["a"], &["b", "c=d"], true),
            ("quoted dashes count", "a \"--\" b", &["a"], &["b"], true),
            (
                "dashes with value do not count",
                "a --=x b",
                &["a", "--", "b"],
                &[],
                false,
            ),
            (
                "second dashes end init args",
                "a -- b -- c",
                &["a"],
                &["b"],
                true,
            ),
            (
                "init arg quotes repaired",
                "-- x=\"a b\" \"y z\"",
                &[],
                &["x=a b", "y z"],
                true,
            ),
            ("trailing dashes", "a --", &["a"], &[], true),
        ];
        for (name, line, params, init, saw) in cases {
            let split = split_args(line.as_bytes());
            let got_params: Vec<&str> = split.params.iter().map(|a| a.param.as_ref()).collect();
            let got_init: Vec<String> = split.init_args.iter().map(Arg::to_init_arg).collect();
            assert_eq!(&got_params, params, "case {name}");
            assert_eq!(&got_init, init, "case {name}");
            assert_eq!(split.saw_dashes, *saw, "case {name}");
        }
    }

    #[test]
    fn parameq_folds_dash_and_underscore() {
        assert!(parameq("dm-mod.create", "dm_mod.create"));
        assert!(parameq("liftoff.device-timeout", "liftoff.device_timeout"));
        assert!(!parameq("liftoff.log", "liftoff.logs"));
        assert!(!parameq("Root", "root"));
    }

    #[test]
    fn quote_rejects_what_the_kernel_cannot_express() {
        assert_eq!(quote("", Some("x")), None);
        assert_eq!(quote("a=b", None), None);
        assert_eq!(quote("a", Some("b\"c")), None);
        assert_eq!(quote("--", None), None);
        assert_eq!(quote("--", Some("x")).as_deref(), Some("--=x"));
        assert_eq!(quote("a b", None).as_deref(), Some("\"a b\""));
        assert_eq!(quote("k", Some("v w")).as_deref(), Some("\"k=v w\""));
    }
}
